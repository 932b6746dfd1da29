"""The soak benchmark: long steady-rate phases back to back (refine off, then on) against one
running API, with its memory sampled throughout. Passes with zero failed requests and RSS growth
within the limit; latency per phase is reported, not gated (each phase keeps its own SLO verdict).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.report import (
    HistoryPoint,
    read_history,
    read_rss,
    read_summary,
    rss_growth,
)
from loadtest.runner import LoadtestPlan, RssSampler, run_locust

RSS_WARMUP_S = 60.0  # the first minute fills caches and pools: growth is measured after it


@dataclass(frozen=True, slots=True)
class SoakPhase:
    name: str
    refine: str
    duration_s: int
    budget_ms: int


@dataclass(frozen=True, slots=True)
class SoakResult:
    phases: list[dict[str, Any]]  # name, refine, duration_s, budget_ms, returncode, summary
    rss_start_mib: float | None
    rss_end_mib: float | None
    rss_growth: float | None
    max_rss_growth: float
    plot: Path | None

    @property
    def failures(self) -> int:
        return sum(p["summary"]["figures"]["failures"] for p in self.phases if p["summary"])

    @property
    def passed(self) -> bool:
        complete = all(p["summary"] is not None for p in self.phases)
        memory_ok = self.rss_growth is None or self.rss_growth <= self.max_rss_growth
        return complete and self.failures == 0 and memory_ok


def run_soak(
    *,
    host: str,
    users: int,
    rate: float,
    phases: list[SoakPhase],
    out_dir: Path,
    api_pid: int | None,
    max_rss_growth: float = 0.10,
    on_tick: Callable[[str, float], None] | None = None,
) -> SoakResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    rss_csv = out_dir / "rss.csv"
    results: list[dict[str, Any]] = []
    histories: list[tuple[SoakPhase, list[HistoryPoint]]] = []
    started = time.time()
    with contextlib.ExitStack() as stack:
        if api_pid:
            stack.enter_context(RssSampler(api_pid, rss_csv))
        for phase in phases:
            plan = LoadtestPlan(
                host=host,
                users=users,
                rate=rate,
                duration_s=phase.duration_s,
                out_dir=out_dir / phase.name,
                refine=phase.refine,
                budget_ms=phase.budget_ms,
            )
            tick = (lambda s, name=phase.name: on_tick(name, s)) if on_tick else None
            outputs = run_locust(plan, on_tick=tick)
            results.append(
                {
                    "name": phase.name,
                    "refine": phase.refine,
                    "duration_s": phase.duration_s,
                    "budget_ms": phase.budget_ms,
                    "returncode": outputs.returncode,
                    "summary": read_summary(outputs.summary),
                    "out_dir": str(plan.out_dir),
                }
            )
            if outputs.history_csv.exists():
                histories.append((phase, read_history(outputs.history_csv)))
    rss = read_rss(rss_csv) if api_pid else []
    after = [m for t, m in rss if t >= RSS_WARMUP_S] or [m for _, m in rss]
    plot = plot_soak(histories, rss, out_dir / "soak.png", started) if histories else None
    return SoakResult(
        phases=results,
        rss_start_mib=after[0] if after else None,
        rss_end_mib=after[-1] if after else None,
        rss_growth=rss_growth(rss, warmup_s=RSS_WARMUP_S) if rss else None,
        max_rss_growth=max_rss_growth,
        plot=plot,
    )


def plot_soak(
    histories: list[tuple[SoakPhase, list[HistoryPoint]]],
    rss: list[tuple[float, float]],
    out_png: Path,
    started: float,
) -> Path:
    """p50/p99 of every phase on one timeline (seconds since `started`, the clock of the RSS
    samples), phase starts marked, RSS below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    for phase, points in histories:
        times = [p.timestamp - started for p in points]
        for column, style in (("50%", ":"), ("99%", "-")):
            values = [p.percentiles_ms[column] for p in points]
            axes[0].plot(
                times,
                [v if v is not None else float("nan") for v in values],
                style,
                label=f"{phase.name} p{column[:-1]}",
            )
        if times:
            axes[0].axvline(times[0], color="grey", linewidth=0.8)
    axes[0].set_ylabel("latency (ms)")
    axes[0].legend(loc="upper left")
    axes[0].grid(alpha=0.3)
    if rss:
        axes[1].plot([t for t, _ in rss], [m for _, m in rss], color="purple", label="API RSS")
        axes[1].legend(loc="upper left")
    axes[1].set_ylabel("RSS (MiB)")
    axes[1].set_xlabel("seconds since start")
    axes[1].grid(alpha=0.3)
    fig.suptitle("soak: p50/p99 over time and API memory")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
