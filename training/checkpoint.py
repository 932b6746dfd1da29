"""A self-describing checkpoint: the model is rebuilt from the file alone.

Only plain Python types and tensors are stored, so `torch.load(weights_only=True)` can read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.models import build_model
from training.models.base import SequenceEncoder

CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.json"


@dataclass
class Checkpoint:
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    item_ids: list[str]  # internal id -> external id; [0] is padding
    item_titles: list[str]
    item_texts: list[str]
    item_popularity: list[int]
    data_info: dict[str, Any]
    sample_sequences: list[list[int]]
    metrics: dict[str, Any] = field(default_factory=dict)
    # The ObjectiveConfig trained with; empty in checkpoints written before it was stored.
    objective_config: dict[str, Any] = field(default_factory=dict)
    format_version: int = CHECKPOINT_FORMAT_VERSION


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(asdict(checkpoint), tmp)
    tmp.replace(path)
    return path


def resolve_checkpoint(path: Path) -> Path:
    """Accept a run directory or the checkpoint file itself."""
    path = Path(path)
    candidate = path / CHECKPOINT_FILE if path.is_dir() else path
    if not candidate.is_file():
        raise CheckpointError(
            f"no checkpoint at {candidate} (expected a run directory with {CHECKPOINT_FILE})"
        )
    return candidate


def load_checkpoint(path: Path) -> Checkpoint:
    file = resolve_checkpoint(path)
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"cannot read checkpoint {file}: {exc}") from exc
    version = raw.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: checkpoint format {version} is not supported "
            f"(expected {CHECKPOINT_FORMAT_VERSION})"
        )
    return Checkpoint(**raw)


def load_model(path: Path) -> tuple[SequenceEncoder, Checkpoint]:
    """Rebuild the trained encoder (eval mode) from a run directory or checkpoint file."""
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint.model_config)
    model.load_state_dict(checkpoint.state_dict)
    model.eval()
    return model, checkpoint
