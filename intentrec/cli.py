"""The `intentrec` console script.

Each package contributes its own commands through `register(app, bench)`; heavy imports (torch,
onnxruntime, faiss) happen inside the commands so that `intentrec --help` and the serving install
work without the training extras.
"""

from __future__ import annotations

import typer

from intentrec import quickstart_cli, stack_cli
from loadtest import cli as loadtest_cli
from models_export import cli as export_cli
from ranker import cli as ranker_cli
from serving import cli as serving_cli
from serving.refine import cli as refine_cli
from training import cli as training_cli

app = typer.Typer(
    name="intentrec",
    help="Train, export and serve multi-intent sequential recommenders.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench = typer.Typer(
    help="Benchmarks: a table by default, one JSON object with --json.", no_args_is_help=True
)
app.add_typer(bench, name="bench")

for package_cli in (
    training_cli,
    export_cli,
    serving_cli,
    refine_cli,
    ranker_cli,
    loadtest_cli,
    stack_cli,
    quickstart_cli,
):
    package_cli.register(app, bench)


def main() -> None:
    app()
