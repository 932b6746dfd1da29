"""Sequence encoders: `build_model(config)` rebuilds one from its config dict alone."""

from __future__ import annotations

import dataclasses
from typing import Any

from training.config import DisenConfig, EncoderConfig, SASRecConfig
from training.models.base import SequenceEncoder, max_intent_scores
from training.models.disen import DisenSeq
from training.models.sasrec import SASRec

ARCHITECTURES: dict[str, tuple[type[EncoderConfig], type[SequenceEncoder]]] = {
    "sasrec": (SASRecConfig, SASRec),
    "disen": (DisenConfig, DisenSeq),
}

__all__ = [
    "ARCHITECTURES",
    "DisenConfig",
    "DisenSeq",
    "EncoderConfig",
    "SASRec",
    "SASRecConfig",
    "SequenceEncoder",
    "build_model",
    "max_intent_scores",
    "model_config",
]


def model_config(config: dict[str, Any]) -> EncoderConfig:
    """Validate a config dict (checkpoint `model_config`) into the arch's dataclass."""
    arch = config.get("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"model config 'arch' must be one of {sorted(ARCHITECTURES)}, got {arch!r}"
        )
    config_cls, _ = ARCHITECTURES[arch]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"model config for {arch!r} has unknown keys: {unknown}")
    if config.get("n_items", 0) < 1:
        raise ValueError("model config needs 'n_items' >= 1 (the catalog size)")
    return config_cls(**config)


def build_model(config: dict[str, Any]) -> SequenceEncoder:
    """config["arch"] in {"sasrec", "disen"}; `build_model(asdict(model.config))` round-trips."""
    cfg = model_config(config)
    _, model_cls = ARCHITECTURES[cfg.arch]
    return model_cls(cfg)
