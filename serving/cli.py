"""Commands of the `serving` package."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
