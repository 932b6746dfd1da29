"""`intentrec report RUN`: one self-contained HTML page of a trained run's figures.

Accuracy (validation and every test protocol, baselines) and the beyond-accuracy figures from
metrics.json, with two plots of the test top-k lists recomputed from the checkpoint: how often
each item is shown against its training popularity, and the Lorenz curve of that exposure (the
Gini index is twice the area between it and the diagonal).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.beyond_accuracy import exposure
from training.checkpoint import METRICS_FILE, load_model
from training.data import load_run_data
from training.evaluate import EvalOptions, model_scorer, popularity_scorer, recommended_lists
from training.report import BEYOND_ACCURACY_LABELS, SHOWN, metric_rows

REPORT_FILE = "report.html"


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.exists():
        raise ValueError(f"{run_dir}: no {METRICS_FILE}; train or evaluate the run first")
    metrics = json.loads(metrics_path.read_text())
    if "beyond_accuracy" not in metrics:
        raise ValueError(
            f"{metrics_path} has no beyond-accuracy figures (written before they existed): "
            f"run `intentrec evaluate {run_dir}` first"
        )
    model, checkpoint = load_model(run_dir)
    dataset = load_run_data(checkpoint.train_config)
    split = dataset.split()
    popularity = dataset.popularity()
    options = EvalOptions(max_len=checkpoint.model_config["max_len"])
    k = metrics["beyond_accuracy"]["k"]
    shown = {
        name: exposure(recommended_lists(scorer, split.test_inputs, options, k), dataset.n_items)
        for name, scorer in (
            ("model", model_scorer(model)),
            ("popularity", popularity_scorer(popularity)),
        )
    }
    page = _page(run_dir, metrics, _exposure_plot(popularity, shown, k))
    path = Path(out) if out is not None else run_dir / REPORT_FILE
    path.write_text(page)
    return path


def _exposure_plot(popularity: np.ndarray, shown: dict[str, np.ndarray], k: int) -> str:
    """Both plots as one base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (scatter, lorenz) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, counts in shown.items():
        scatter.scatter(popularity[1:] + 1, counts[1:] + 1, s=6, alpha=0.5, label=name)
        ordered = np.sort(counts[1:])
        share = np.concatenate([[0.0], np.cumsum(ordered) / ordered.sum()])
        lorenz.plot(np.linspace(0, 1, len(share)), share, label=name)
    scatter.set(
        xscale="log",
        yscale="log",
        xlabel="training interactions + 1",
        ylabel=f"test top-{k} lists showing the item + 1",
        title="exposure against item popularity",
    )
    lorenz.plot([0, 1], [0, 1], color="grey", linestyle=":", label="equal exposure")
    lorenz.set(
        xlabel="share of items (least shown first)",
        ylabel="share of exposure",
        title="Lorenz curve of exposure",
    )
    for axes in (scatter, lorenz):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(run_dir: Path, metrics: dict[str, Any], plot_png: str) -> str:
    beyond = metrics["beyond_accuracy"]
    data = metrics.get("data", {})
    summary = (
        f"{metrics.get('model', '?')} on {data.get('name', '?')} ({data.get('users', '?')} users, "
        f"{data.get('items', '?')} items); {metrics.get('stopped', '')}; "
        f"{metrics.get('train_seconds', '?')} s of training on {metrics.get('device', '?')}"
    )
    beyond_rows = [
        [label, f"{beyond['model'][name]:.4f}", f"{beyond['popularity'][name]:.4f}"]
        for name, label in BEYOND_ACCURACY_LABELS.items()
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>intentrec report: {html.escape(str(run_dir))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(str(run_dir))}</h1>
<p>{html.escape(summary)}</p>
<h2>Accuracy</h2>
{_table(["split / protocol", *SHOWN], metric_rows(metrics))}
<h2>Beyond accuracy: test top-{beyond["k"]} lists, history masked</h2>
{_table(["figure", "model", "popularity ranking"], beyond_rows)}
<p>Coverage: share of the catalog shown to at least one user. Exposure Gini: 0 when every item
is shown equally often. Popularity percentile: 100 = the most popular item. Novelty: mean
-log2 of the share of training users who interacted with a shown item. Diversity: 1 - mean
pairwise cosine of the model's item embeddings within a list.</p>
<img alt="exposure against item popularity and its Lorenz curve"
 src="data:image/png;base64,{plot_png}">
</body></html>
"""
