"""Readable tables of evaluation metrics."""

from __future__ import annotations

from typing import Any

from rich.table import Table

# Fits an 80-column terminal with the longest row label; hr@5, ndcg@5 and the rest are in
# metrics.json.
SHOWN = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20")
PROTOCOL_LABELS = {
    "full": "full ranking",
    "full_history_kept": "full, history kept",
    "sampled_uniform_100": "100 uniform negatives",
    "sampled_popularity_100": "100 popular negatives",
    "cold_start_last5": "cold start (last 5)",
}


def metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """One row per split / protocol / baseline of metrics.json: its label, then the SHOWN
    metrics formatted (the terminal table and the HTML report show the same rows)."""
    history = metrics.get("history", "masked")
    rows: list[tuple[str, dict[str, float]]] = []
    if metrics.get("valid"):
        rows.append((f"valid full ({history})", metrics["valid"]))
    for protocol, values in metrics.get("test", {}).items():
        label = f"test {PROTOCOL_LABELS.get(protocol, protocol)}"
        if protocol == "full":
            label += f" ({history})"
        rows.append((label, values))
    for name, splits in metrics.get("baselines", {}).items():
        for split_name, values in splits.items():
            rows.append((f"{name} {split_name} full", values))
    return [
        [label, *(f"{values.get(name, float('nan')):.4f}" for name in SHOWN)]
        for label, values in rows
    ]


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("split / protocol", no_wrap=True)
    for name in SHOWN:
        table.add_column(name, justify="right", no_wrap=True)
    for row in metric_rows(metrics):
        table.add_row(*row)
    return table


BEYOND_ACCURACY_LABELS = {
    "coverage": "catalog coverage",
    "gini": "exposure Gini",
    "popularity_percentile": "popularity percentile",
    "novelty": "novelty (bits)",
    "diversity": "intra-list diversity",
}


def beyond_accuracy_table(metrics: dict[str, Any]) -> Table:
    """The test top-k lists' beyond-accuracy figures, the model's beside popularity's."""
    figures = metrics["beyond_accuracy"]
    table = Table(title=f"test top-{figures['k']} lists (history masked)")
    table.add_column("figure", no_wrap=True)
    table.add_column("model", justify="right")
    table.add_column("popularity", justify="right")
    for name, label in BEYOND_ACCURACY_LABELS.items():
        table.add_row(label, f"{figures['model'][name]:.4f}", f"{figures['popularity'][name]:.4f}")
    return table
