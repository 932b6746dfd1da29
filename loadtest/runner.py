"""Run the locustfile headless in a child process, bounded in time, and collect its outputs."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CSV_PREFIX = "locust"
_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s?)?\s*$")


def parse_duration(text: str) -> int:
    """'60s', '10m', '1h30m', '90' -> seconds; a clear error for anything else."""
    match = _DURATION.match(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"duration {text!r}: expected e.g. 60s, 10m or 1h30m")
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return total


@dataclass(frozen=True, slots=True)
class LoadtestPlan:
    host: str
    users: int
    rate: float  # requests/s over all users; 0 = closed loop
    duration_s: int
    out_dir: Path
    refine: str = "off"
    budget_ms: int | None = None
    k: int | None = None
    spawn_rate: float | None = None  # users started per second; default: all within ~1 s
    api_pid: int | None = None  # sample this process's RSS (with its children) during the run
    env: Mapping[str, str] = field(default_factory=dict)  # extra INTENTREC_LOADTEST_/SLO_ vars


@dataclass(frozen=True, slots=True)
class LoadtestOutputs:
    returncode: int
    out_dir: Path
    stats_csv: Path
    history_csv: Path
    html: Path
    summary: Path
    log: Path
    rss_csv: Path | None


def locust_argv(plan: LoadtestPlan) -> list[str]:
    prefix = plan.out_dir / CSV_PREFIX
    return [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", plan.host,
        "--users", str(plan.users),
        "--spawn-rate", str(plan.spawn_rate or plan.users),
        "--run-time", f"{plan.duration_s}s",
        # Users finish the request in flight, then stop: a bounded tail.
        "--stop-timeout", "5",
        "--csv", str(prefix),
        "--csv-full-history",
        "--html", str(plan.out_dir / "report.html"),
        "--only-summary",
        "--loglevel", "INFO",
    ]  # fmt: skip


def locust_env(plan: LoadtestPlan) -> dict[str, str]:
    env = {
        **os.environ,
        "INTENTREC_LOADTEST_RATE": str(plan.rate),
        "INTENTREC_LOADTEST_REFINE": plan.refine,
        "INTENTREC_LOADTEST_SUMMARY_FILE": str(plan.out_dir / "summary.json"),
        "MPLBACKEND": "Agg",
        **plan.env,
    }
    if plan.budget_ms is not None:
        env["INTENTREC_LOADTEST_BUDGET_MS"] = str(plan.budget_ms)
    if plan.k is not None:
        env["INTENTREC_LOADTEST_K"] = str(plan.k)
    return env


class RssSampler:
    """Samples a process tree's resident memory once a second into a CSV (t_s, rss_mib)."""

    def __init__(self, pid: int, out_csv: Path, interval_s: float = 1.0) -> None:
        self.pid, self.out_csv, self.interval_s = pid, out_csv, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _rss_mib(self) -> float | None:
        import psutil

        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in tree) / 2**20
        except psutil.Error:
            return None

    def _run(self) -> None:
        start = time.monotonic()
        with self.out_csv.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["t_s", "rss_mib"])
            while not self._stop.is_set():
                rss = self._rss_mib()
                if rss is not None:
                    writer.writerow([f"{time.monotonic() - start:.1f}", f"{rss:.1f}"])
                    handle.flush()
                self._stop.wait(self.interval_s)


def _reap(process: subprocess.Popen) -> None:
    """Ask a still-running Locust to stop (it writes its reports on SIGTERM), then insist."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_locust(
    plan: LoadtestPlan, *, on_tick: Callable[[float], None] | None = None
) -> LoadtestOutputs:
    """Start Locust headless for `plan`, wait (never longer than the run time plus a grace
    period), and return where it wrote its outputs."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    log_path = plan.out_dir / "locust.log"
    rss_csv = plan.out_dir / "rss.csv" if plan.api_pid else None
    deadline_s = plan.duration_s + 60  # spawn, stop-timeout and report writing
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("w"))
        process = subprocess.Popen(
            locust_argv(plan), stdout=log, stderr=subprocess.STDOUT, env=locust_env(plan)
        )
        stack.callback(_reap, process)
        if plan.api_pid and rss_csv:
            stack.enter_context(RssSampler(plan.api_pid, rss_csv))
        started = time.monotonic()
        while process.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > deadline_s:
                break
            if on_tick:
                on_tick(elapsed)
            time.sleep(0.5)
    prefix = plan.out_dir / CSV_PREFIX
    return LoadtestOutputs(
        returncode=process.returncode,
        out_dir=plan.out_dir,
        stats_csv=Path(f"{prefix}_stats.csv"),
        history_csv=Path(f"{prefix}_stats_history.csv"),
        html=plan.out_dir / "report.html",
        summary=plan.out_dir / "summary.json",
        log=log_path,
        rss_csv=rss_csv,
    )
