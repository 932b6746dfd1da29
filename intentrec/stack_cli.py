"""`intentrec stack up|down|status`: the local stack as background processes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import typer

stack = typer.Typer(
    help="Start/stop redis-server, the embedded LLM (optional) and the API on 127.0.0.1.",
    no_args_is_help=True,
)


def _settings(state_dir: Path | None, **ports: int | None):
    from serving.stack import StackSettings

    overrides = {name: value for name, value in ports.items() if value is not None}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    return StackSettings(**overrides)


@stack.command("up")
def up(
    bundle: Path | None = typer.Option(
        None, help="Bundle directory or bundles root (default INTENTREC_BUNDLE_DIR)."
    ),
    llm: bool = typer.Option(False, "--llm", help="Also start `intentrec llm serve` for refine."),
    llm_url: str | None = typer.Option(
        None, help="Use this OpenAI-compatible LLM server (e.g. vLLM on a GPU) for refine."
    ),
    workers: int | None = typer.Option(None, min=1, help="API worker processes."),
    api_port: int | None = typer.Option(None, help="API port (default 8000)."),
    redis_port: int | None = typer.Option(None, help="redis-server port (default 6379)."),
    llm_port: int | None = typer.Option(None, help="LLM server port (default 8001)."),
    state_dir: Path | None = typer.Option(
        None, help="Pid files, logs and Redis data (default var/stack)."
    ),
) -> None:
    """Start the services that are not running yet and wait until each is healthy."""
    from intentrec.output import say
    from serving.stack import StackError, stack_up

    settings = _settings(
        state_dir, api_port=api_port, redis_port=redis_port, llm_port=llm_port, api_workers=workers
    )
    try:
        states = stack_up(settings, bundle=bundle, llm=llm, llm_url=llm_url, report=say)
    except StackError as exc:
        say(f"[red]{exc}[/]")
        say("services already started keep running; `intentrec stack down` stops them")
        raise typer.Exit(1) from exc
    api = states["api"]
    say(
        f"stack up (state in {settings.state_dir}). Try:\n"
        f"  curl -s {api.url}/recommend -H 'content-type: application/json' "
        """-d '{"user_id": "196", "k": 5}'\n"""
        f"  intentrec loadtest --host {api.url} --users 8 --rate 50 --duration 60s "
        f"--api-pid {api.pid}"
    )


@stack.command("down")
def down(
    state_dir: Path | None = typer.Option(None, help="State directory used by `stack up`."),
) -> None:
    """Stop the API, the LLM server and redis-server started by `stack up`."""
    from serving.stack import stack_down

    settings = _settings(state_dir)
    stopped = stack_down(settings)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack.command("status")
def status(
    state_dir: Path | None = typer.Option(None, help="State directory used by `stack up`."),
) -> None:
    """Which services of the stack run, their pids, URLs and logs."""
    from rich.table import Table

    from intentrec.output import console, say
    from serving.stack import stack_status

    settings = _settings(state_dir)
    services = stack_status(settings)
    if not services:
        say(
            f"nothing is running: no service was started from {settings.state_dir} "
            "(`intentrec stack up` starts them)"
        )
        return
    table = Table(title="intentrec stack")
    for column in ("service", "state", "pid", "url", "log"):
        table.add_column(column, overflow="fold")
    for name, (state, alive) in services.items():
        verdict = "[green]running[/]" if alive else "[red]dead[/]"
        table.add_row(name, verdict, str(state.pid), state.url, state.log)
    console.print(table)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `intentrec stack ...` to the CLI."""
    app.add_typer(stack, name="stack")
