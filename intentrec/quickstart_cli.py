"""`intentrec quickstart`: the main job end to end on the shipped MovieLens 100K.

Train and evaluate an encoder, export a bundle, start the local stack (redis-server, the embedded
LLM when it is installed, the API) in the background, and show a request that returns titles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from intentrec.output import console, say


def quickstart(
    data: Annotated[str, typer.Option(help="Data folder or file.")] = "data/ml-100k",
    model: Annotated[str, typer.Option(help="sasrec | disen")] = "sasrec",
    run_dir: Annotated[Path, typer.Option(help="Where the training run goes.")] = Path(
        "runs/quickstart"
    ),
    bundles: Annotated[Path, typer.Option(help="Bundles root (bundles/current is served).")] = Path(
        "bundles"
    ),
    llm: Annotated[
        bool, typer.Option(help="Start the embedded LLM for refine when it is installed.")
    ] = True,
    llm_url: Annotated[
        str | None, typer.Option(help="Use this OpenAI-compatible server (e.g. vLLM on a GPU).")
    ] = None,
    serve: Annotated[bool, typer.Option(help="Start the stack after exporting.")] = True,
    port: Annotated[int, typer.Option(help="API port on 127.0.0.1.")] = 8000,
) -> None:
    """Train + evaluate on ml-100k, export a bundle, serve it on 127.0.0.1 (Redis, LLM, API)."""
    from models_export.export import export_run
    from serving.refine.server import vllm_installed
    from serving.stack import StackError, StackSettings, stack_up
    from training.config import train_config
    from training.report import metrics_table
    from training.train import run_training

    console.rule(f"1/3 train and evaluate {model} on {data}")
    result = run_training(train_config(data=data, model=model), run_dir)
    console.print(metrics_table(result.metrics, title=f"{model} on {data}"))
    say(f"{result.metrics['stopped']}; {result.metrics['train_seconds']:.0f} s")
    say(f"wrote {result.checkpoint_path} and {run_dir / 'metrics.json'}")

    console.rule(f"2/3 export to {bundles}")
    exported = export_run(run_dir, bundles, progress=True)
    say(f"wrote bundle {exported.bundle_dir} and switched {bundles / 'current'}")
    if not serve:
        return

    with_llm = llm and llm_url is None and vllm_installed()
    console.rule("3/3 start the local stack" + (" with the embedded LLM" if with_llm else ""))
    if llm and llm_url is None and not with_llm:
        say("embedded LLM not installed (scripts/install-llm.sh): refine stays off")
    settings = StackSettings(api_port=port)
    try:
        states = stack_up(settings, bundle=bundles, llm=with_llm, llm_url=llm_url, report=say)
    except StackError as exc:
        say(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    say(next_steps(states["api"].url, refine=with_llm or llm_url is not None))


def next_steps(api_url: str, *, refine: bool) -> str:
    """What to try once the stack is up; each command on one line, to paste as printed."""
    # The store starts empty, so the example carries a history (Star Wars films) itself. `auto`
    # refines only with a measured lift (`intentrec evaluate-refine`): `on` shows the stage. On a
    # CPU LLM the first call for a new history times out inside the budget and fills the cache
    # in the background; asking again is served from it (README, "LLM refine stage").
    body = json.dumps(
        {"user_id": "196", "history": ["172", "181", "50"], "k": 10,
         "refine": "on" if refine else "off", "budget_ms": 1000}
    )  # fmt: skip
    return (
        "\nThe API is running in the background. Recommendations with titles:\n"
        f"  curl -s {api_url}/recommend -H 'content-type: application/json' -d '{body}'\n"
        f"Send events with POST {api_url}/events; interactive API docs: {api_url}/docs\n"
        "Stop everything: intentrec stack down"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `intentrec quickstart` to the CLI."""
    app.command("quickstart")(quickstart)
