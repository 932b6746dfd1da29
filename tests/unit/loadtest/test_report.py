"""Reading Locust's stats history back and plotting it."""

from __future__ import annotations

import csv
from pathlib import Path

from loadtest.report import plot_run, read_history, read_rss, rss_growth

HEADER = [
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s",
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    "Total Request Count", "Total Failure Count", "Total Median Response Time",
    "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
    "Total Average Content Size",
]  # fmt: skip


def _row(ts: int, name: str, rps: str, p50: str, p99: str) -> list[str]:
    percentiles = [p50, p50, p50, p50, p50, p99, p99, p99, p99, p99, p99]
    kind = "POST" if name != "Aggregated" else ""
    totals = ["10", "0", "5", "5.0", "1", "20", "800"]
    return [str(ts), "4", kind, name, rps, "0.000000", *percentiles, *totals]


def _history(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerow(_row(1000, "Aggregated", "0.000000", "N/A", "N/A"))
        writer.writerow(_row(1001, "/recommend (known)", "20.0", "4", "9"))
        writer.writerow(_row(1001, "Aggregated", "25.5", "5", "12"))
        writer.writerow(_row(1003, "Aggregated", "30.0", "6", "14"))
    return path


def test_only_aggregated_rows_are_read_with_relative_time(tmp_path) -> None:
    points = read_history(_history(tmp_path / "h.csv"))
    assert [p.t_s for p in points] == [0.0, 1.0, 3.0]
    assert points[0].percentiles_ms["99%"] is None  # "N/A" before the first response
    assert points[1].percentiles_ms == {"50%": 5.0, "95%": 12.0, "99%": 12.0}
    assert [p.rps for p in points] == [0.0, 25.5, 30.0]


def test_rss_growth_after_warm_up(tmp_path) -> None:
    path = tmp_path / "rss.csv"
    path.write_text("t_s,rss_mib\n0.0,80.0\n10.0,100.0\n20.0,104.0\n30.0,105.0\n")
    samples = read_rss(path)
    assert rss_growth(samples) == 105.0 / 80.0 - 1.0
    assert rss_growth(samples, warmup_s=10.0) == 105.0 / 100.0 - 1.0
    assert rss_growth(samples[:1]) is None
    assert read_rss(tmp_path / "missing.csv") == []


def test_plot_is_written(tmp_path) -> None:
    points = read_history(_history(tmp_path / "h.csv"))
    png = plot_run(points, tmp_path / "out" / "latency.png", title="t", rss=[(0, 1), (1, 2)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
