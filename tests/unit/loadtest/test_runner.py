"""How a load run is started: duration parsing and the bounded, headless Locust command."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.runner import LOCUSTFILE, LoadtestPlan, locust_argv, locust_env, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60), ("90", 90), ("10m", 600), ("1h30m", 5400), ("2m5s", 125)]
)
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5s", "0s", "1.5m"])
def test_bad_durations_are_named(text) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def _plan(tmp_path: Path, **overrides) -> LoadtestPlan:
    values = {
        "host": "http://127.0.0.1:8000",
        "users": 8,
        "rate": 40.0,
        "duration_s": 30,
        "out_dir": tmp_path,
    }
    return LoadtestPlan(**(values | overrides))


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_locust_runs_headless_bounded_with_csv_history_and_html(tmp_path) -> None:
    argv = locust_argv(_plan(tmp_path))
    assert argv[1:3] == ["-m", "locust"]
    assert _option(argv, "-f") == str(LOCUSTFILE) and LOCUSTFILE.exists()
    assert "--headless" in argv and "--csv-full-history" in argv
    assert _option(argv, "--run-time") == "30s"
    assert _option(argv, "--users") == "8"
    assert _option(argv, "--spawn-rate") == "8"
    assert _option(argv, "--csv") == str(tmp_path / "locust")
    assert _option(argv, "--html") == str(tmp_path / "report.html")


def test_the_run_settings_reach_the_locustfile_through_the_environment(tmp_path) -> None:
    env = locust_env(
        _plan(tmp_path, refine="on", budget_ms=800, k=20, env={"INTENTREC_SLO_P99_MS": "900"})
    )
    assert env["INTENTREC_LOADTEST_RATE"] == "40.0"
    assert env["INTENTREC_LOADTEST_REFINE"] == "on"
    assert env["INTENTREC_LOADTEST_BUDGET_MS"] == "800"
    assert env["INTENTREC_LOADTEST_K"] == "20"
    assert env["INTENTREC_LOADTEST_SUMMARY_FILE"] == str(tmp_path / "summary.json")
    assert env["INTENTREC_SLO_P99_MS"] == "900"
    assert "INTENTREC_LOADTEST_K" not in locust_env(_plan(tmp_path))
