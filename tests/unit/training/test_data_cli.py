"""`intentrec data stats|synth` and `intentrec bench data` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from training import data_cli

ML100K = Path(__file__).resolve().parents[3] / "data" / "ml-100k"


@pytest.fixture
def app() -> typer.Typer:
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    data_cli.register(app, bench)
    return app


def test_stats_json_on_ml100k(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["data", "stats", str(ML100K), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["users"], figures["items"], figures["actions"]) == (943, 1682, 100_000)
    assert figures["length_p50"] <= figures["length_p90"] <= figures["length_p99"]
    assert figures["length_max"] == 737 and figures["format"] == "atomic"


def test_stats_table_and_k_core(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["data", "stats", str(ML100K), "--k-core", "10"])
    assert result.exit_code == 0, result.output
    assert "users" in result.stdout and "length_p99" in result.stdout
    assert "1,682" not in result.stdout  # items with fewer than 10 actions are gone


def test_synth_then_stats(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "s.txt"
    args = [
        "data",
        "synth",
        "--users",
        "50",
        "--items",
        "40",
        "--actions",
        "600",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(out) in result.stdout
    stats = CliRunner().invoke(app, ["data", "stats", str(out), "--json"])
    figures = json.loads(stats.stdout)
    assert (figures["users"], figures["actions"], figures["format"]) == (50, 600, "text")


def test_bad_file_exits_2_with_the_message(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("u i\nu i j\n")
    result = CliRunner().invoke(app, ["data", "stats", str(bad)])
    assert result.exit_code == 2
    assert "line 2: found 3 fields instead of 2" in result.output


def test_bench_data_json(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "data", str(ML100K), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["actions"] == 100_000
    assert {"cold_load_s", "cached_load_s", "peak_rss_mb"} <= set(figures)
