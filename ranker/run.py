"""One ranker training run: the bundle's examples for training users, a held-out slice of
users for early stopping, the fine-tuning, the card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ranker.examples import build_examples
from ranker.train import RankerOptions, train_ranker


@dataclass(frozen=True)
class RankerRun:
    bundle: Path
    data: Path
    out: Path
    base: Path | None = None
    users: int | None = None
    cuts_per_user: int = 1
    valid_share: float = 0.1


@dataclass(frozen=True)
class RankerResult:
    out: Path
    card_path: Path
    card: dict[str, Any]


def default_base() -> Path:
    """The embedded SmolLM2-135M as a Hugging Face folder (converted once, as the server does)."""
    from serving.refine.server import ensure_model
    from serving.refine.settings import LLMServerSettings

    return ensure_model(LLMServerSettings())


def run_ranker_training(run: RankerRun, options: RankerOptions, console: Console) -> RankerResult:
    import json

    from models_export.bundle import resolve_bundle
    from serving.model import load_model
    from serving.settings import Settings
    from training.data import load_dataset

    settings = Settings()
    bundle_dir = resolve_bundle(run.bundle)
    model = load_model(bundle_dir, settings)
    dataset = load_dataset(run.data)
    split = dataset.split()
    rng = np.random.default_rng(options.seed)
    picked = rng.permutation(len(split.train))[: run.users or len(split.train)]
    held = max(1, round(run.valid_share * len(picked)))
    groups = {"valid": picked[:held], "train": picked[held:]}
    examples, counts = {}, {}
    for name, users in groups.items():
        sequences = [[dataset.item_ids[i] for i in split.train[u]] for u in users]
        examples[name], counts[name] = build_examples(
            model,
            [dataset.user_ids[u] for u in users],
            sequences,
            settings.refine,
            cuts_per_user=run.cuts_per_user,
        )
        console.print(f"{name}: {json.dumps(counts[name])}")
    base = run.base or default_base()
    card = {
        "bundle": model.version,
        "data": dataset.name,
        "data_source_hash": dataset.source_hash,
        "refine": {
            "candidates": settings.refine.refine_candidates,
            "fixed_top": settings.refine.refine_fixed_top,
            "history": settings.refine.refine_history,
            "title_chars": settings.refine.refine_title_chars,
        },
        "users": {name: len(u) for name, u in groups.items()},
        "example_counts": counts,
    }
    _, card_path = train_ranker(
        base, examples["train"], examples["valid"], settings.refine, options, run.out, card
    )
    return RankerResult(Path(run.out), card_path, json.loads(card_path.read_text()))
