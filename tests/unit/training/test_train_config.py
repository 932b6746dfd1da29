"""TrainConfig: the encoder's config and the objective's, built from flat options, stored in the
checkpoint; checkpoints written before the objective was stored still load."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from training.checkpoint import CHECKPOINT_FILE, load_checkpoint, load_model
from training.config import (
    LARGE_VALIDATION_PATIENCE,
    LARGE_VALIDATION_USERS,
    SMALL_VALIDATION_PATIENCE,
    TUNED_DEFAULTS,
    DisenConfig,
    ObjectiveConfig,
    SASRecConfig,
    TrainConfig,
    default_of,
    lr_decay_patience_for,
    option_names,
    patience_for,
    train_config,
)
from training.train import plateau_scheduler


def _tuned(arch: str, group: str) -> dict:
    return {k: v for k, v in TUNED_DEFAULTS[arch].items() if k in option_names(arch)[group]}


def test_flat_options_land_in_the_config_that_owns_them() -> None:
    config = train_config(
        data="d", model="disen", intents=2, dim=32, future_len=5, s2i_share=0.5, lr=5e-3
    )
    assert config.model == DisenConfig(**(_tuned("disen", "model") | {"intents": 2, "dim": 32}))
    assert config.objective == ObjectiveConfig(
        **(_tuned("disen", "objective") | {"future_len": 5, "s2i_share": 0.5})
    )
    assert (config.data, config.lr) == ("d", 5e-3)


@pytest.mark.parametrize(("arch", "encoder"), [("sasrec", SASRecConfig), ("disen", DisenConfig)])
def test_defaults_are_the_tuned_ones_then_the_config_classes(arch: str, encoder: type) -> None:
    config = train_config(data="d", model=arch)
    assert config.model == encoder(**_tuned(arch, "model"))
    assert config.objective == ObjectiveConfig(**_tuned(arch, "objective"))
    loop = _tuned(arch, "loop")
    assert config == TrainConfig(
        data="d", model=config.model, objective=config.objective, threads=config.threads, **loop
    )
    assert all(default_of(name, arch) == value for name, value in TUNED_DEFAULTS[arch].items())


def test_given_options_win_over_the_tuned_defaults() -> None:
    tuned = TUNED_DEFAULTS["disen"]
    assert "dim" in tuned and "lr" in tuned  # what the test changes
    config = train_config(data="d", model="disen", dim=16, lr=0.5)
    assert (config.model.dim, config.lr) == (16, 0.5)


def test_a_bce_run_gets_the_tuned_label_smoothing_only_when_it_asks_for_it() -> None:
    tuned = TUNED_DEFAULTS["sasrec"]["label_smoothing"]
    assert tuned > 0  # what the test drops
    assert train_config(data="d", model="sasrec", loss="bce").objective.label_smoothing == 0.0
    assert train_config(data="d", model="sasrec", loss="sampled").objective.label_smoothing == tuned
    with pytest.raises(ValueError, match="label_smoothing applies to the ce and sampled"):
        train_config(data="d", model="sasrec", loss="bce", label_smoothing=0.1)


def test_patience_by_default_follows_the_validation_set_size_and_a_given_one_wins() -> None:
    assert train_config(data="d").patience is None
    assert patience_for(None, 943) == SMALL_VALIDATION_PATIENCE
    assert patience_for(None, LARGE_VALIDATION_USERS - 1) == SMALL_VALIDATION_PATIENCE
    assert patience_for(None, LARGE_VALIDATION_USERS) == LARGE_VALIDATION_PATIENCE
    assert LARGE_VALIDATION_PATIENCE < SMALL_VALIDATION_PATIENCE
    assert patience_for(7, 943) == patience_for(7, 22_363) == 7


@pytest.mark.parametrize(
    ("options", "named"),
    [({"lr_decay": 0.0}, "lr_decay"), ({"lr_decay": 1.5}, "lr_decay"),
     ({"lr_decay_patience": 0}, "lr_decay_patience")],
)  # fmt: skip
def test_bad_learning_rate_decay_options_are_named(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        train_config(data="d", **options)


def _learning_rates(scores: list[float], **options: float) -> list[float]:
    """The learning rate after each validation score, as the training loop feeds them."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = plateau_scheduler(optimizer, train_config(data="d", **options), patience=8)
    rates = []
    for score in scores:
        if scheduler is not None:
            scheduler.step(score)
        rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_the_learning_rate_decays_only_when_validation_stalls() -> None:
    assert lr_decay_patience_for(None, 40) == 10
    assert lr_decay_patience_for(None, 3) == 1
    assert lr_decay_patience_for(5, 40) == 5
    rising = [0.01 * i for i in range(1, 13)]
    assert set(_learning_rates(rising, lr_decay=0.5)) == {1e-3}
    # stopping patience 8 -> decay patience 2: the rate halves at the third evaluation in a row
    # without a gain (torch's rule: more than `patience`), and again three later
    stalled = [0.1, 0.2, 0.2, 0.19, 0.2, 0.1, 0.2, 0.2]
    assert _learning_rates(stalled, lr_decay=0.5) == pytest.approx(
        [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4]
    )
    assert _learning_rates(stalled, lr_decay=0.5, lr_decay_patience=6)[-1] == 1e-3
    assert set(_learning_rates(stalled)) == {1e-3}


def test_each_option_has_exactly_one_owner() -> None:
    groups = list(option_names("disen").values())
    for i, names in enumerate(groups):
        for other in groups[i + 1 :]:
            assert not names & other


@pytest.mark.parametrize(
    ("options", "named"),
    [({"model": "sasrec", "intents": 2}, "intents"), ({"colour": 1}, "colour")],
)
def test_an_option_the_run_does_not_have_is_named(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        train_config(data="d", **options)


def test_an_unknown_architecture_is_named() -> None:
    with pytest.raises(ValueError, match="rnn"):
        train_config(data="d", model="rnn")


def test_the_cli_shows_defaults_without_importing_torch() -> None:
    code = "import sys, training.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_checkpoint_stores_both_configs(tiny_run_disen: Path) -> None:
    checkpoint = load_checkpoint(tiny_run_disen)
    assert checkpoint.model_config["arch"] == "disen"
    assert checkpoint.model_config["intents"] == 2
    assert checkpoint.model_config["n_items"] > 0
    assert ObjectiveConfig(**checkpoint.objective_config) == ObjectiveConfig()
    assert not {"model", "objective"} & set(checkpoint.train_config)
    assert {f.name for f in fields(TrainConfig)} - {"model", "objective"} == set(
        checkpoint.train_config
    )


def test_a_checkpoint_without_the_objective_config_still_loads(
    tiny_run_sasrec: Path, tmp_path: Path
) -> None:
    raw = torch.load(tiny_run_sasrec / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    del raw["objective_config"]
    # The flat train_config of those checkpoints, model and objective options among the rest.
    raw["train_config"] |= {"model": "sasrec", "dim": 32, "loss": "ce"}
    torch.save(raw, tmp_path / CHECKPOINT_FILE)
    model, checkpoint = load_model(tmp_path)
    assert checkpoint.objective_config == {}
    assert model.config.arch == "sasrec"
