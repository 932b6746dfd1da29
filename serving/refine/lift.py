"""The lift file: offline NDCG@10 lift per LLM and mode, written by `intentrec evaluate-refine`.

`refine=auto` refines only when the configured LLM's measured lift in the configured mode is >= 0;
no file or no entry means no evidence, and `auto` stays off.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def read_lift(path: Path, llm_model: str, mode: str) -> float | None:
    try:
        data = json.loads(path.read_text())
        return float(data[llm_model][mode]["lift_ndcg10"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_lift(path: Path, llm_model: str, mode: str, entry: dict[str, Any]) -> None:
    """Merge one (model, mode) entry into the file, replacing it atomically."""
    if "lift_ndcg10" not in entry:
        raise ValueError("a lift entry needs `lift_ndcg10`")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault(llm_model, {})[mode] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lift-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
