"""`--ema-decay`: the weights validated, kept and exported are a moving average of the trained
ones, updated after every optimiser step."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from training.config import train_config
from training.data import load_run_data
from training.models import build_model
from training.train import fit, seed_everything, weight_average


def test_no_average_at_decay_zero() -> None:
    assert weight_average(torch.nn.Linear(2, 2), 0.0) is None


def test_the_average_follows_each_update_with_the_decay() -> None:
    model = torch.nn.Linear(3, 1, bias=False)
    averaged = weight_average(model, 0.9)
    assert averaged is not None
    with torch.no_grad():
        model.weight.fill_(1.0)
    averaged.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        model.weight.fill_(3.0)
    averaged.update_parameters(model)
    assert torch.allclose(averaged.module.weight, torch.full((1, 3), 0.9 * 1.0 + 0.1 * 3.0))


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_a_decay_outside_zero_to_one_is_named(decay: float) -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        train_config(data="d", ema_decay=decay)


def _distance_from_initial_weights(tiny_data: Path, ema_decay: float) -> float:
    options = dict(
        data=str(tiny_data), dim=16, layers=1, max_len=20, epochs=2, patience=5, lr=1e-2,
        batch_size=8, threads=1, seed=3, ema_decay=ema_decay,
    )  # fmt: skip
    config = train_config(**options)
    dataset = load_run_data(config.loop_options())
    result = fit(config, dataset, progress=False)
    seed_everything(config.seed)  # fit builds its model right after seeding
    initial = build_model(asdict(result.model_config)).state_dict()
    return sum(float((result.best_state[name] - initial[name]).norm()) for name in initial)


def test_what_is_kept_is_the_average_not_the_last_weights(tiny_data: Path) -> None:
    # a decay this close to 1 keeps the average at the weights of the first step, a few
    # learning rates from the initial ones; the trained weights move over 16 steps
    raw = _distance_from_initial_weights(tiny_data, 0.0)
    averaged = _distance_from_initial_weights(tiny_data, 1 - 1e-9)
    assert averaged < raw / 3
