"""`intentrec search` on a tiny synthetic set: reproducible for a seed, writes what it says, and
its architecture file trains with `intentrec train --arch` into a checkpoint that rebuilds it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentrec.cli import app
from training.architecture import load_architecture
from training.checkpoint import load_checkpoint, load_model
from training.search.evolution import EvolutionOptions
from training.search.run import (
    ARCHITECTURE_FILE,
    BEST_CONFIG_FILE,
    HAND_DESIGNED,
    LOG_FILE,
    PLOT_FILE,
    RETRAINED_FILE,
    SearchOptions,
    search_architecture,
)

pytestmark = pytest.mark.slow

TINY = {
    "model": "disen", "dim": 16, "heads": 2, "max_len": 20, "intents": 2, "loss": "ce",
    "epochs": 2, "patience": 2, "threads": 1, "seed": 4,
}  # fmt: skip


def test_the_search_is_reproducible_for_a_seed(tiny_data: Path, tmp_path: Path) -> None:
    options = SearchOptions(
        depth=3,
        supernet_epochs=1,
        evolution=EvolutionOptions(population=4, generations=2),
        retrain_top=2,
        progress=False,
    )
    base = TINY | {"data": str(tiny_data)}
    first = search_architecture(base, tmp_path / "first", options)
    second = search_architecture(base, tmp_path / "second", options)
    assert first.best == second.best
    log = (tmp_path / "first" / LOG_FILE).read_text()
    assert log == (tmp_path / "second" / LOG_FILE).read_text()

    rows = list(csv.DictReader(log.splitlines()))
    assert len(rows) == first.evaluated >= 4
    assert {row["generation"] for row in rows} <= {"1", "2"}
    assert all(0.0 <= float(row["valid_ndcg@10"]) <= 1.0 for row in rows)
    with (tmp_path / "first" / RETRAINED_FILE).open() as file:
        retrained = list(csv.DictReader(file))
    assert [row["architecture"] for row in retrained][-1] == HAND_DESIGNED
    assert len(retrained) == 3
    searched = [row for row in retrained if row["architecture"] != HAND_DESIGNED]
    # the winner is the retrained architecture best on validation, not the supernet's favourite
    best_row = max(searched, key=lambda row: float(row["valid_ndcg@10"]))
    assert best_row["architecture"] == first.best.describe()
    assert first.space_size == 39 * 78 * 117
    assert (tmp_path / "first" / PLOT_FILE).read_bytes().startswith(b"\x89PNG")


def test_search_then_train_with_the_found_architecture(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    config_file = tmp_path / "tuned.json"
    config_file.write_text(json.dumps({k: v for k, v in TINY.items() if k != "threads"}))
    result = CliRunner().invoke(
        app,
        [
            "search", "--data", str(tiny_data), "--config", str(config_file), "--layers", "2",
            "--generations", "2", "--population", "3", "--supernet-epochs", "1",
            "--retrain-top", "1", "--no-compare-hand-designed", "--threads", "1",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    output = result.output.replace("\n", "")
    assert "space 3,042 architectures" in output and "evaluated" in output
    architecture = load_architecture(out / ARCHITECTURE_FILE)
    assert architecture.depth == 2
    best_config = json.loads((out / BEST_CONFIG_FILE).read_text())
    assert best_config["trunk"] == architecture.to_dict()
    assert best_config["dim"] == 16 and "data" not in best_config  # the tuned file was used

    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train", "--data", str(tiny_data), "--model", "disen", "--dim", "16", "--heads",
            "2", "--intents", "2", "--epochs", "1", "--threads", "1",
            "--arch", str(out / ARCHITECTURE_FILE), "--out", str(run),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run).model_config["trunk"] == architecture.to_dict()
    model, _ = load_model(run)
    assert model.trunk_architecture == architecture and len(model.blocks) == 0


def test_a_bad_architecture_file_is_named(tiny_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "arch.json"
    bad.write_text(json.dumps({"layers": [{"type": "attention", "query_op": "zero"}]}))
    result = CliRunner().invoke(
        app, ["train", "--data", str(tiny_data), "--arch", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert f"{bad}: layer 1 (attention): fields" in result.output.replace("\n", "")
