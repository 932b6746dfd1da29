"""What a newcomer reads from the `intentrec` command: one-line errors, unwrapped commands,
uncut tables."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from intentrec import output
from intentrec.cli import app
from intentrec.quickstart_cli import next_steps
from training.report import metrics_table


def run(*args: str):
    return CliRunner().invoke(app, list(args), terminal_width=80)


def test_stack_status_with_nothing_started_says_so(tmp_path: Path) -> None:
    result = run("stack", "status", "--state-dir", str(tmp_path / "stack"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("nothing is running")
    assert str(tmp_path / "stack") in result.output.replace("\n", "")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file or folder"),
        ("196 242\n186\n", "line 2: found 1 field instead of 2"),
    ],
)
def test_train_on_bad_data_prints_the_one_line_error(
    tmp_path: Path, content: str | None, says: str
) -> None:
    data = tmp_path / "actions.txt"
    if content is not None:
        data.write_text(content)
    result = run("train", "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(data) in lines[0] and says in lines[0]
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_train_with_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("train", "--data", str(tmp_path / "missing"), "--debug")
    assert isinstance(result.exception, FileNotFoundError)


def test_the_metrics_table_keeps_every_row_name_and_figure_whole_in_80_columns() -> None:
    figures = {"hr@10": 0.1729, "ndcg@10": 0.0880, "mrr@10": 0.0614, "hr@20": 0.2, "ndcg@20": 0.1}
    protocols = (
        "full", "full_history_kept", "sampled_uniform_100", "sampled_popularity_100",
        "cold_start_last5",
    )  # fmt: skip
    metrics = {
        "history": "masked",
        "valid": figures,
        "test": dict.fromkeys(protocols, figures),
        "baselines": {"popularity": {"valid": figures, "test": figures}},
    }
    out = io.StringIO()
    Console(file=out, width=80).print(metrics_table(metrics, title="sasrec on ml-100k"))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in (
        "valid full (masked)",
        "test full ranking (masked)",
        "test full, history kept",
        "test 100 uniform negatives",
        "test 100 popular negatives",
        "test cold start (last 5)",
        "popularity test full",
    ):
        assert label in text, label
    assert text.count("0.0880") == 8  # every row, none cut to "0.08…"


def test_the_quickstart_curl_is_one_line_that_pastes_as_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=out, width=80))
    output.say(next_steps("http://127.0.0.1:8000", refine=True))
    curl = [line for line in out.getvalue().splitlines() if "curl" in line]
    assert len(curl) == 1
    body = re.search(r"-d '(\{.*\})'$", curl[0])
    assert body is not None, curl[0]
    assert '"refine": "on"' in body.group(1) and '"history": ["172", "181", "50"]' in body.group(1)
