"""The SLO gate: thresholds from the environment, counters, and the verdict over Locust stats.

Importing locust monkey-patches the whole process (gevent), so real Locust stats are built in a
child interpreter, never in the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtest.slo import LoadFigures, ResponseCounters, SloSettings, check_slo


def _figures(**overrides) -> LoadFigures:
    values = {
        "requests": 1000,
        "failures": 0,
        "rps": 100.0,
        "p50_ms": 4.0,
        "p95_ms": 9.0,
        "p99_ms": 12.0,
        "recommend_ok": 800,
        "degraded": 0,
        "over_budget": 0,
        "refined": 0,
        "degraded_reasons": {},
    }
    return LoadFigures(**(values | overrides))


def test_thresholds_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("INTENTREC_SLO_P99_MS", "15")
    monkeypatch.setenv("INTENTREC_SLO_MAX_ERROR_RATE", "0")
    monkeypatch.setenv("INTENTREC_SLO_EXPECTED_DEGRADED", '["cold_start", "refine_timeout"]')
    slo = SloSettings()
    assert slo.p99_ms == 15.0
    assert slo.max_error_rate == 0.0
    assert slo.expected_degraded == ["cold_start", "refine_timeout"]


def test_a_bad_threshold_is_refused_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("INTENTREC_SLO_MAX_ERROR_RATE", "2")
    with pytest.raises(ValueError, match="max_error_rate"):
        SloSettings()


def test_all_objectives_met() -> None:
    result = check_slo(_figures(), SloSettings(p99_ms=15.0))
    assert result.passed
    assert [o.name for o in result.objectives] == [
        "requests",
        "p99_ms",
        "error_rate",
        "degraded_rate",
        "over_budget_rate",
    ]


@pytest.mark.parametrize(
    ("overrides", "missed"),
    [
        ({"p99_ms": 15.5}, "p99_ms"),
        ({"failures": 2}, "error_rate"),  # 0.2 % > 0.1 %
        ({"degraded": 41}, "degraded_rate"),  # 5.1 % > 5 %
        ({"over_budget": 9}, "over_budget_rate"),  # 1.1 % > 1 %
        ({"requests": 0, "recommend_ok": 0}, "requests"),
    ],
)
def test_each_objective_can_be_missed(overrides, missed) -> None:
    result = check_slo(_figures(**overrides), SloSettings(p99_ms=15.0))
    assert not result.passed
    assert [o.name for o in result.missed] == [missed]


def test_boundary_values_pass() -> None:
    slo = SloSettings(p99_ms=12.0)
    assert check_slo(_figures(failures=1, degraded=40, over_budget=8), slo).passed


def test_counters_separate_expected_and_unexpected_degradation() -> None:
    slo = SloSettings()
    counters = ResponseCounters()
    counters.record(degraded=["cold_start"], refined=False, total_ms=3.0, budget_ms=50, slo=slo)
    counters.record(degraded=[], refined=True, total_ms=56.0, budget_ms=50, slo=slo)
    counters.record(
        degraded=["cold_start", "refine_timeout"],
        refined=False,
        total_ms=None,
        budget_ms=50,
        slo=slo,
    )
    assert counters.recommend_ok == 3
    assert counters.degraded == 1  # only the refine_timeout answer
    assert counters.refined == 1
    assert counters.over_budget == 1  # 56 > 50 + 5
    assert counters.reasons == {"cold_start": 2, "refine_timeout": 1}


def test_worker_counters_merge_into_the_master() -> None:
    slo = SloSettings()
    worker = ResponseCounters()
    worker.record(degraded=["refine_error"], refined=False, total_ms=1.0, budget_ms=50, slo=slo)
    master = ResponseCounters()
    master.merge(worker.to_dict())
    master.merge(worker.to_dict())
    assert (master.recommend_ok, master.degraded, master.reasons) == (2, 2, {"refine_error": 2})
    worker.reset()
    assert worker.to_dict() == ResponseCounters().to_dict()


LOCUST_STATS_SCRIPT = """
import json
from dataclasses import asdict
from locust.stats import RequestStats
from loadtest.slo import ResponseCounters, figures_from_stats

stats = RequestStats()
for ms in range(1, 101):
    stats.log_request("POST", "/recommend", ms, 500)
stats.log_error("POST", "/events", "status 503")
stats.log_request("POST", "/events", 3, 40)
empty = RequestStats()
print(json.dumps([
    asdict(figures_from_stats(stats.total, ResponseCounters(recommend_ok=100))),
    asdict(figures_from_stats(empty.total, ResponseCounters())),
]))
"""


def test_figures_from_real_locust_stats() -> None:
    result = subprocess.run(
        [sys.executable, "-c", LOCUST_STATS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    full, empty = (LoadFigures(**values) for values in json.loads(result.stdout))
    assert (full.requests, full.failures, full.recommend_ok) == (101, 1, 100)
    assert (full.p50_ms, full.p99_ms) == (50, 99)
    assert full.error_rate == pytest.approx(1 / 101)
    assert [o.name for o in check_slo(full, SloSettings(p99_ms=50.0)).missed] == [
        "p99_ms",
        "error_rate",
    ]
    assert (empty.requests, empty.p99_ms, empty.error_rate) == (0, 0.0, 0.0)
    assert [o.name for o in check_slo(empty, SloSettings()).missed] == ["requests"]
