"""The refine commands register on a Typer app and import no heavy module to do so."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from serving.refine.cli import register


def test_commands_are_registered_with_help() -> None:
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    register(app, bench)
    runner = CliRunner()
    for args, words in [
        (["llm", "serve", "--help"], "vLLM"),
        (["evaluate-refine", "--help"], "NDCG"),
        (["bench", "refine", "--help"], "within budget"),
    ]:
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 0, result.output
        assert words in result.output


def test_evaluate_refine_names_a_missing_bundle(tmp_path) -> None:
    app, bench = typer.Typer(), typer.Typer()
    register(app, bench)
    missing = tmp_path / "nope"
    result = CliRunner().invoke(
        app, ["evaluate-refine", str(missing), "--llm", "http://127.0.0.1:9/v1"]
    )
    assert result.exit_code != 0
    assert "nope" in str(result.exception) + result.output


def test_importing_the_cli_loads_no_torch_or_vllm() -> None:
    code = (
        "import sys, serving.refine.cli, serving.refine.server, serving.refine; "
        "sys.exit(1 if {'torch', 'vllm', 'onnxruntime'} & set(sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
