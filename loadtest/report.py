"""Reading a finished run back: Locust's stats history CSV, the RSS samples, the latency plot."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERCENTILE_COLUMNS = ("50%", "95%", "99%")


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    timestamp: float  # Unix seconds (Locust writes whole seconds)
    t_s: float  # seconds since the first row
    users: int
    rps: float
    failures_per_s: float
    percentiles_ms: dict[str, float | None]  # "50%" -> ms over Locust's recent window


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # Locust writes "N/A" before the first response


def read_history(path: Path) -> list[HistoryPoint]:
    """The aggregated rows of `<prefix>_stats_history.csv`, one per Locust stats interval."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("Name") == "Aggregated"]
    if not rows:
        return []
    t0 = float(rows[0]["Timestamp"])
    return [
        HistoryPoint(
            timestamp=float(row["Timestamp"]),
            t_s=float(row["Timestamp"]) - t0,
            users=int(row["User Count"]),
            rps=_number(row["Requests/s"]) or 0.0,
            failures_per_s=_number(row["Failures/s"]) or 0.0,
            percentiles_ms={column: _number(row[column]) for column in PERCENTILE_COLUMNS},
        )
        for row in rows
    ]


def read_rss(path: Path) -> list[tuple[float, float]]:
    """(seconds since start, RSS in MiB) samples written by the runner's sampler."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [(float(row["t_s"]), float(row["rss_mib"])) for row in csv.DictReader(handle)]


def rss_growth(samples: list[tuple[float, float]], warmup_s: float = 0.0) -> float | None:
    """Relative RSS growth from the first sample after `warmup_s` to the last one."""
    after = [rss for t, rss in samples if t >= warmup_s]
    if len(after) < 2 or after[0] <= 0:
        return None
    return after[-1] / after[0] - 1.0


def read_summary(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def plot_run(
    history: list[HistoryPoint],
    out_png: Path,
    *,
    title: str,
    rss: list[tuple[float, float]] | None = None,
    p99_target_ms: float | None = None,
) -> Path:
    """Latency percentiles and throughput over time (and RSS when sampled) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if rss else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.8 * panels + 0.6), sharex=True)
    times = [point.t_s for point in history]
    latency = axes[0]
    for column in PERCENTILE_COLUMNS:
        values = [point.percentiles_ms[column] for point in history]
        latency.plot(
            times, [v if v is not None else float("nan") for v in values], label=f"p{column[:-1]}"
        )
    if p99_target_ms is not None:
        latency.axhline(p99_target_ms, color="red", linestyle="--", linewidth=1, label="p99 SLO")
    latency.set_ylabel("latency (ms)")
    latency.legend(loc="upper left")
    latency.grid(alpha=0.3)
    throughput = axes[1]
    throughput.plot(times, [p.rps for p in history], label="requests/s")
    throughput.plot(times, [p.failures_per_s for p in history], label="failures/s", color="red")
    throughput.set_ylabel("per second")
    throughput.legend(loc="upper left")
    throughput.grid(alpha=0.3)
    if rss:
        memory = axes[2]
        memory.plot([t for t, _ in rss], [m for _, m in rss], label="API RSS", color="purple")
        memory.set_ylabel("RSS (MiB)")
        memory.legend(loc="upper left")
        memory.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds since start")
    fig.suptitle(title)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
