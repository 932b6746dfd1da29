"""The lift file: refine's measured NDCG@10 lift per LLM, written by
`intentrec evaluate-refine`, read by `refine=auto`.

An entry holds the lift on validation users with its paired-bootstrap 95 % interval, the same on
test users, the LLM and the bundle it was measured with. `refine=auto` refines only when the
validation interval lies above zero: a lift that 200 users cannot tell from noise is no
evidence. No file, no entry, or an entry without an interval (written before intervals were
measured) means no evidence, and `auto` stays off.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Lift:
    """Mean of paired per-user differences (refined minus encoder) and its 95 % interval."""

    mean: float
    low: float
    high: float
    users: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "ci95": [self.low, self.high], "users": self.users}


def paired_bootstrap(
    refined: np.ndarray, encoder: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> Lift:
    """Percentile bootstrap of the mean per-user difference: users are resampled with
    replacement and both variants of a user move together (the pairing)."""
    refined, encoder = np.asarray(refined, float), np.asarray(encoder, float)
    if refined.shape != encoder.shape or refined.ndim != 1:
        raise ValueError(
            f"paired scores need two equal 1-d arrays, got {refined.shape} and {encoder.shape}"
        )
    if len(refined) == 0:
        raise ValueError("no users to bootstrap over")
    differences = refined - encoder
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[picks].mean(axis=1)
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Lift(float(differences.mean()), float(low), float(high), len(differences))


@dataclass(frozen=True)
class LiftEvidence:
    """What `refine=auto` reads: the validation lift's interval, and what it was measured on."""

    lift: float
    low: float
    high: float
    bundle: str | None

    @property
    def refines(self) -> bool:
        return self.low > 0.0


def read_lift(path: Path, llm_model: str) -> LiftEvidence | None:
    try:
        entry = json.loads(path.read_text())[llm_model]
        low, high = (float(x) for x in entry["ci95"])
        return LiftEvidence(float(entry["lift_ndcg10"]), low, high, entry.get("bundle"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_lift(path: Path, llm_model: str, entry: dict[str, Any]) -> None:
    """Merge one model's entry into the file, replacing it atomically."""
    missing = [key for key in ("lift_ndcg10", "ci95", "bundle") if key not in entry]
    if missing:
        raise ValueError(f"a lift entry needs {missing}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[llm_model] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lift-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)
