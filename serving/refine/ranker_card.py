"""The card `intentrec refine train` writes beside a fine-tuned ranker, read by the API at
start-up: a ranker learned to reorder one bundle's candidates, and another bundle's differ."""

from __future__ import annotations

import json
from pathlib import Path


def ranker_mismatch(card_path: Path, bundle_version: str) -> str | None:
    """A warning when the ranker's card is unreadable or names another bundle; None when the
    ranker was trained against `bundle_version`."""
    try:
        trained = json.loads(Path(card_path).read_text())["bundle"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"refine ranker card {card_path} unreadable ({exc}): cannot check its bundle"
    if trained != bundle_version:
        return (
            f"the refine LLM ranker ({card_path}) was trained on bundle {trained!r}'s candidates, "
            f"but bundle {bundle_version!r} is served: retrain it (intentrec refine train) or "
            "serve the bundle it knows"
        )
    return None
