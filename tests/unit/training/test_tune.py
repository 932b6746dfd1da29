"""`intentrec tune`: a real 2-trial Ray Tune search (ASHA) on a tiny synthetic set, and the
configuration file it writes trained by `intentrec train --config`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentrec.cli import app
from training.checkpoint import load_checkpoint
from training.tune import (
    BEST_CONFIG_FILE,
    NOT_SEARCHED,
    PLOT_FILE,
    TRIALS_FILE,
    read_config_file,
    search_space,
    trial_config,
)

pytestmark = pytest.mark.slow


def test_two_trial_search_writes_best_config_trials_and_plot(
    tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "search"
    result = CliRunner().invoke(
        app,
        [
            "tune", "--data", str(tiny_data), "--trials", "2", "--max-epochs", "2",
            "--grace-minutes", "0.05", "--out", str(out), "--seed", "3",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with (out / TRIALS_FILE).open() as file:
        trials = list(csv.DictReader(file))
    assert len(trials) == 2
    assert all(not trial["error"] for trial in trials)
    scores = [float(trial["valid_ndcg@10"]) for trial in trials]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(1 <= int(trial["epochs"]) <= 2 for trial in trials)

    best = json.loads((out / BEST_CONFIG_FILE).read_text())
    space = set(search_space("sasrec"))
    assert space <= set(best)
    assert not set(NOT_SEARCHED) & set(best)
    # The file holds the values of the best trial (the first row: sorted by validation NDCG).
    assert best["dim"] == int(trials[0]["dim"])
    assert best["lr"] == pytest.approx(float(trials[0]["lr"]))
    assert (out / PLOT_FILE).read_bytes().startswith(b"\x89PNG")
    assert str(out / BEST_CONFIG_FILE) in result.output.replace("\n", "")


def test_train_takes_the_config_file_and_command_line_options_win(
    tiny_data: Path, tmp_path: Path
) -> None:
    config_file = tmp_path / "best.json"
    config_file.write_text(json.dumps({"dim": 16, "layers": 1, "dropout": 0.3, "epochs": 3}))
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train", "--data", str(tiny_data), "--out", str(run), "--config", str(config_file),
            "--epochs", "1",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1  # the command line's --epochs 1 beat the file's 3
    encoder = load_checkpoint(run).model_config
    assert (encoder["dim"], encoder["layers"], encoder["dropout"]) == (16, 1, 0.3)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"dimension": 64}', "unknown training option 'dimension' for sasrec"),
        ('{"intents": 2}', "unknown training option 'intents' for sasrec"),
        ('{"model": "gru"}', "model must be one of"),
        ('{"dim": "big"}', "option 'dim' must be int, got 'big'"),
        ('{"s2i_only": 1}', "option 's2i_only' must be bool"),
        ("[1, 2]", "expected a JSON object"),
        ("{dim: 64", "not JSON"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=words) as caught:
        read_config_file(path)
    assert str(path) in str(caught.value)


def test_trial_config_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="not an option of sasrec training: depth"):
        trial_config({"data": "x"}, {"depth": 3})
    assert trial_config({"data": "x"}, {"dim": 128}).model.dim == 128
    disen = trial_config({"data": "x", "model": "disen"}, {"intents": 2, "s2s_lambda": 0.3})
    assert (disen.model.intents, disen.objective.s2s_lambda) == (2, 0.3)
