"""Imports of optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    pass


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"`{module}` is not installed: install the `{extra}` extra "
            f"(pip install 'intentrec[{extra}]')"
        ) from exc
