"""`intentrec loadtest` end to end: Locust headless against the real app (uvicorn on 127.0.0.1,
real bundle, real redis-server), a report with requests and no failures, and the SLO gate."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import typer
from typer.testing import CliRunner

from loadtest.cli import register
from loadtest.runner import LoadtestPlan, run_locust
from loadtest.soak import SoakPhase, run_soak

pytestmark = pytest.mark.slow


def _cli() -> typer.Typer:
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    register(app, bench)
    return app


def test_short_run_has_requests_no_failures_and_meets_the_slo(
    start_server, tmp_path, monkeypatch
) -> None:
    # Shared 2-core machines: the gate under test is the mechanism, not this machine's speed.
    monkeypatch.setenv("INTENTREC_SLO_P99_MS", "2000")
    out = tmp_path / "report"
    with start_server() as server:
        args = ["loadtest", "--host", server.url, "--users", "4", "--rate", "20"]
        args += ["--duration", "8s", "--budget-ms", "1000", "--out", str(out), "--json"]
        result = CliRunner().invoke(_cli(), args)
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        seeded = httpx.get(f"{server.url}/users/lt-{summary['run_id']}-0-0/history").json()
    assert result.exit_code == 0, result.output
    figures = summary["figures"]
    assert figures["requests"] > 50
    assert figures["failures"] == 0
    assert figures["recommend_ok"] > 0
    assert summary["slo"]["passed"] is True
    # The mix reached every endpoint kind: seeding, events, known and cold recommendations.
    rows = (out / "locust_stats.csv").read_text()
    for name in ("/events (seed)", "/events", "/recommend (known)", "/recommend (cold)"):
        assert f",{name}," in rows
    assert figures["degraded_reasons"].get("cold_start", 0) > 0
    assert len(seeded["items"]) >= 8  # the seed events of the first simulated end user
    assert (out / "report.html").stat().st_size > 0
    assert (out / "latency.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["outputs"]["plot"] == str(out / "latency.png")


def test_a_missed_objective_fails_the_run(start_server, tmp_path) -> None:
    with start_server() as server:
        plan = LoadtestPlan(
            host=server.url,
            users=2,
            rate=20,
            duration_s=3,
            out_dir=tmp_path,
            budget_ms=1000,
            env={"INTENTREC_SLO_P99_MS": "0.001"},  # no HTTP round trip is that fast
        )
        outputs = run_locust(plan)
    summary = json.loads(outputs.summary.read_text())
    assert outputs.returncode == 1
    assert summary["figures"]["failures"] == 0
    assert summary["slo"]["passed"] is False
    assert [o["name"] for o in summary["slo"]["objectives"] if not o["passed"]] == ["p99_ms"]


def test_soak_runs_both_phases_and_samples_the_api_memory(start_server, tmp_path) -> None:
    with start_server() as server:
        result = run_soak(
            host=server.url,
            users=2,
            rate=20,
            phases=[SoakPhase("refine-off", "off", 3, 1000), SoakPhase("refine-on", "on", 3, 1000)],
            out_dir=tmp_path,
            api_pid=os.getpid(),  # the server runs in this process's thread
        )
    assert [p["name"] for p in result.phases] == ["refine-off", "refine-on"]
    assert all(p["summary"]["figures"]["requests"] > 0 for p in result.phases)
    assert result.failures == 0
    # No LLM is configured here: refine=on answers are degraded, never failed.
    on = result.phases[1]["summary"]["figures"]
    assert on["degraded_reasons"].get("refine_unavailable", 0) > 0
    assert result.rss_start_mib is not None and result.rss_end_mib is not None
    assert result.passed
    assert result.plot is not None and result.plot.read_bytes()[:4] == b"\x89PNG"
