"""Beyond-accuracy figures of a real (tiny) training run, and `intentrec report` on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from intentrec.cli import app
from training.checkpoint import load_model
from training.data import load_dataset
from training.evaluate import EvalOptions, model_scorer, recommended_lists
from training.sequences import left_pad

pytestmark = pytest.mark.slow


def test_recommended_lists_are_the_top_scores_without_the_history(tiny_run_sasrec: Path) -> None:
    model, checkpoint = load_model(tiny_run_sasrec)
    split = load_dataset(checkpoint.train_config["data"]).split()
    inputs = split.test_inputs[:50]
    options = EvalOptions(max_len=checkpoint.model_config["max_len"])
    scorer = model_scorer(model)
    lists = recommended_lists(scorer, inputs, options, k=10)
    assert lists.shape == (50, 10)
    scores = scorer(left_pad(inputs, options.max_len))
    for row, history in enumerate(inputs):
        assert not set(lists[row].tolist()) & set(history.tolist())
        assert 0 not in lists[row]
        shown = scores[row, lists[row]]
        assert np.all(np.diff(shown) <= 0)
        allowed = np.setdiff1d(np.arange(1, scores.shape[1]), history)
        assert shown[-1] >= np.sort(scores[row, allowed])[-10]


def test_a_trained_model_spreads_exposure_wider_than_popularity(tiny_run_sasrec: Path) -> None:
    beyond = json.loads((tiny_run_sasrec / "metrics.json").read_text())["beyond_accuracy"]
    model, popularity = beyond["model"], beyond["popularity"]
    assert beyond["k"] == 10
    assert model["coverage"] > popularity["coverage"]
    assert model["gini"] < popularity["gini"]
    assert model["popularity_percentile"] < popularity["popularity_percentile"]
    assert model["novelty"] > popularity["novelty"]
    assert 0.0 < model["diversity"] <= 2.0


def test_report_writes_one_html_page_with_the_figures_and_plots(
    tiny_run_sasrec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(tiny_run_sasrec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    page = out.read_text()
    metrics = json.loads((tiny_run_sasrec / "metrics.json").read_text())
    assert f"{metrics['beyond_accuracy']['model']['coverage']:.4f}" in page
    assert f"{metrics['test']['full']['ndcg@10']:.4f}" in page
    assert "data:image/png;base64," in page
    assert "Lorenz curve" in page


def test_report_of_a_run_without_beyond_accuracy_says_to_evaluate_it(
    tiny_run_sasrec: Path, tmp_path: Path
) -> None:
    old_run = tmp_path / "old-run"
    shutil.copytree(tiny_run_sasrec, old_run)
    metrics = json.loads((old_run / "metrics.json").read_text())
    del metrics["beyond_accuracy"]
    (old_run / "metrics.json").write_text(json.dumps(metrics))
    result = CliRunner().invoke(app, ["report", str(old_run)])
    assert result.exit_code == 2
    assert f"intentrec evaluate {old_run}" in result.output.replace("\n", "")
    assert not (old_run / "report.html").exists()
