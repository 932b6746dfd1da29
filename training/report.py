"""Readable tables of evaluation metrics."""

from __future__ import annotations

from typing import Any

from rich.table import Table

SHOWN = ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20")


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("split / protocol")
    for name in SHOWN:
        table.add_column(name, justify="right")
    rows: list[tuple[str, dict[str, float]]] = []
    if metrics.get("valid"):
        rows.append((f"valid full ({metrics.get('history', 'masked')})", metrics["valid"]))
    for protocol, values in metrics.get("test", {}).items():
        label = f"test {protocol}"
        if protocol == "full":
            label += f" ({metrics.get('history', 'masked')})"
        rows.append((label, values))
    for name, splits in metrics.get("baselines", {}).items():
        for split_name, values in splits.items():
            rows.append((f"{name} {split_name} full", values))
    for label, values in rows:
        table.add_row(label, *(f"{values.get(name, float('nan')):.4f}" for name in SHOWN))
    return table
