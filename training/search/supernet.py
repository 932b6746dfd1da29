"""The supernet (Section 4.2.4): one encoder whose trunk holds every architecture of a depth,
trained single-path one-shot: each step trains one uniformly drawn architecture with the
model's own objective (DisenSeq's Seq2Seq, Section 4.2.5).

The encoder around the trunk (embeddings, DisenSeq head) is the model's own and shared by every
path; the trunk's parameters are shared by context (training/models/searched.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np
import torch
from tqdm.auto import tqdm

from training.architecture import Architecture
from training.config import EncoderConfig, TrainConfig
from training.models import SequenceEncoder, build_model
from training.models.searched import ArchitectureTrunk
from training.objectives import build_objective
from training.search.space import random_architecture
from training.train import resolve_device, seed_everything, train_epoch


def build_supernet(model_config: EncoderConfig, depth: int) -> SequenceEncoder:
    """`model_config`'s encoder with the supernet as its trunk (n_items set)."""
    model = build_model(asdict(replace(model_config, layers=0, trunk=None)))
    model.searched = ArchitectureTrunk.supernet(
        depth,
        model_config.dim,
        model_config.heads,
        model_config.dropout,
        model_config.attention_dropout_rate,
    )
    model.trunk_architecture = random_architecture(depth, np.random.default_rng(0))
    return model


def use_path(supernet: SequenceEncoder, architecture: Architecture) -> None:
    """Make the supernet compute `architecture` from now on."""
    supernet.trunk_architecture = architecture


def standalone(
    supernet: SequenceEncoder, model_config: EncoderConfig, architecture: Architecture
) -> SequenceEncoder:
    """A model of `architecture` alone, holding the supernet's weights of that path."""
    model = build_model(asdict(replace(model_config, trunk=architecture.to_dict())))
    inherited = supernet.state_dict()
    model.load_state_dict({name: inherited[name] for name in model.state_dict()})
    return model.to(next(supernet.parameters()).device)


def train_supernet(
    config: TrainConfig,
    sequences: list[np.ndarray],
    depth: int,
    epochs: int,
    *,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> SequenceEncoder:
    """`epochs` passes over the training windows, a fresh uniform path for every batch.
    `config.model.n_items` must be set (the data set's)."""
    seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    model = build_supernet(config.model, depth).to(resolve_device(config.device))
    objective = build_objective(config.model, config.objective)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    rng = np.random.default_rng(config.seed)

    def draw_path() -> None:
        use_path(model, random_architecture(depth, rng))

    bar = tqdm(range(1, epochs + 1), desc="supernet", unit="epoch", disable=not progress)
    for epoch in bar:
        loss = train_epoch(model, objective, optimizer, sequences, config, rng, draw_path)
        bar.set_postfix(loss=f"{loss:.4f}")
        if on_epoch is not None:
            on_epoch(epoch, loss)
    model.eval()
    return model
