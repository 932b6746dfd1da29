"""`intentrec bench serve` end to end: a real server process, real load, one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.pm_qos import DEVICE_USABLE


def test_bench_serve_prints_one_json_object_with_its_figures(serving_bundles, tmp_path) -> None:
    command = [
        sys.executable, "-c", "from intentrec.cli import main; main()",
        "bench", "serve", "--bundle", str(serving_bundles), "--duration", "0.5",
        "--concurrency", "1,4", "--rates", "50", "--json",
    ]  # fmt: skip
    # The server the bench starts takes the setting from the environment; holding the request
    # needs root, and the report says whether the server held it.
    env = os.environ | {"INTENTREC_CPU_LATENCY_US": "0"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    names = [row["scenario"] for row in report["scenarios"]]
    assert names == ["closed c=1", "closed c=4", "open 50 req/s"]
    assert all(row["requests"] > 0 for row in report["scenarios"])
    assert report["figures"]["errors"] == 0
    assert report["in_process_encode_retrieve_p50_ms"] > 0
    assert report["http_healthz_p50_ms_c1"] > 0, "timed in slices between the one-client requests"
    # Read from the one-client answers after its run.
    assert report["server_encode_retrieve_p50_ms_c1"] > 0
    # Half the requests name a stored user: after the first read of each, the copy answers.
    assert report["history_cache"]["hit"] > report["history_cache"]["miss"] > 0
    assert report["cpu_latency_us"] == 0
    assert report["cpu_latency_held"] is DEVICE_USABLE
    assert set(report["targets"]) == {
        "p99_ms_at_200rps",
        "peak_rps",
        "errors",
        "http_over_inprocess_p50",
    }
