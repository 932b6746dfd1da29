"""`intentrec bench serve` end to end: a real server process, real load, one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bench_serve_prints_one_json_object_with_its_figures(serving_bundles, tmp_path) -> None:
    command = [
        sys.executable, "-c", "from intentrec.cli import main; main()",
        "bench", "serve", "--bundle", str(serving_bundles), "--duration", "0.5",
        "--concurrency", "1,4", "--rates", "50", "--json",
    ]  # fmt: skip
    # The server the bench starts takes its settings from the environment: the history cache
    # (off by default) on, so that the report's cache counts can be checked.
    env = os.environ | {"INTENTREC_HISTORY_CACHE_SIZE": "1000"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    names = [row["scenario"] for row in report["scenarios"]]
    assert names == [
        "GET /healthz c=1",
        "closed c=1",
        "closed c=4",
        "open 50 req/s",
        "explain off c=1",
        "explain on c=1",
    ]
    assert all(row["requests"] > 0 for row in report["scenarios"])
    figures = report["figures"]
    assert figures["errors"] == 0
    assert 0 < figures["healthz_p50_ms_c1"] < figures["p50_ms_c1"] <= figures["p99_ms_c1"]
    assert figures["peak_rps"] == max(row["throughput_rps"] for row in report["scenarios"][1:3])
    assert figures["p99_ms_at_200rps"] is None  # no run at that rate here
    # Half the requests name a stored user: after the first read of each, the copy answers.
    assert report["history_cache"]["hit"] > report["history_cache"]["miss"] > 0
    assert report["device"]["name"] == "cpu"
    assert report["device"]["providers"] == ["CPUExecutionProvider"]
    assert set(report["targets"]) == {
        "p99_ms_at_200rps",
        "peak_rps",
        "errors",
        "explain_p50_ms_added",
    }
    off, on = report["scenarios"][-2:]
    assert off["requests"] == on["requests"]  # alternated
    assert figures["explain_p50_ms_added"] == round(on["p50_ms"] - off["p50_ms"], 3)
