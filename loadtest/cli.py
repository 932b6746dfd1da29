"""Commands of the `loadtest` package: `intentrec loadtest`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer


class RefineSwitch(StrEnum):
    ON = "on"
    OFF = "off"
    AUTO = "auto"


def _default_out() -> Path:
    return Path("reports") / f"loadtest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def _print_result(
    summary: dict[str, Any], outputs: Any, png: Path | None, growth: float | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    figures = summary["figures"]
    table = Table(title="load test")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("requests", f"{figures['requests']}"),
        ("failures", f"{figures['failures']}"),
        ("requests/s", f"{figures['rps']:.1f}"),
        ("p50 ms", f"{figures['p50_ms']:.1f}"),
        ("p95 ms", f"{figures['p95_ms']:.1f}"),
        ("p99 ms", f"{figures['p99_ms']:.1f}"),
        ("/recommend answered", f"{figures['recommend_ok']}"),
        ("refined", f"{figures['refined']}"),
        ("degraded (unexpected)", f"{figures['degraded']}"),
        ("degraded reasons", json.dumps(figures["degraded_reasons"]) or "{}"),
        ("over budget", f"{figures['over_budget']}"),
    ]
    if growth is not None:
        rows.append(("API RSS growth", f"{growth:+.1%}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    slo = Table(title="SLO")
    for column in ("objective", "measured", "rule", "threshold", "verdict"):
        slo.add_column(column)
    for o in summary["slo"]["objectives"]:
        verdict = "[green]ok[/]" if o["passed"] else "[red]MISSED[/]"
        slo.add_row(o["name"], f"{o['measured']:.4g}", o["rule"], f"{o['threshold']:.4g}", verdict)
    console.print(slo)
    console.print(
        f"wrote {outputs.stats_csv}, {outputs.history_csv}, {outputs.html}, {outputs.summary}"
    )
    if png is not None:
        console.print(f"wrote {png}")


def loadtest(
    host: str = typer.Option("http://127.0.0.1:8000", "--host", help="Base URL of a running API."),
    users: int = typer.Option(10, "--users", "-u", min=1, help="Simulated client apps."),
    rate: float = typer.Option(
        50.0, "--rate", "-r", min=0.0, help="Target requests/s over all users (0: closed loop)."
    ),
    duration: str = typer.Option("60s", "--duration", "-t", help="Run time, e.g. 60s, 10m."),
    refine: RefineSwitch = typer.Option(
        RefineSwitch.OFF, "--refine", help="`refine` of each request."
    ),
    budget_ms: int | None = typer.Option(
        None, "--budget-ms", min=1, max=10_000, help="Budget per request (default: settings)."
    ),
    k: int | None = typer.Option(None, "--k", min=1, max=100, help="Items per request."),
    api_pid: int | None = typer.Option(
        None,
        "--api-pid",
        help="Sample this API process's RSS during the run (e.g. var/stack/api.pid).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default reports/loadtest-<time>)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Run the Locust mix headless against HOST for DURATION: CSV + HTML report, a latency plot,
    and exit code 1 when a service-level objective (INTENTREC_SLO_*) is missed."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from loadtest.report import plot_run, read_history, read_rss, read_summary, rss_growth
    from loadtest.runner import LoadtestPlan, parse_duration, run_locust
    from loadtest.slo import SloSettings

    try:
        duration_s = parse_duration(duration)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--duration") from exc
    out_dir = out or _default_out()
    plan = LoadtestPlan(
        host=host.rstrip("/"),
        users=users,
        rate=rate,
        duration_s=duration_s,
        out_dir=out_dir,
        refine=refine.value,
        budget_ms=budget_ms,
        k=k,
        api_pid=api_pid,
    )
    with Progress(
        TextColumn(f"locust: {users} users, {rate:g} req/s, refine {refine.value}"),
        BarColumn(),
        TimeElapsedColumn(),
        disable=as_json,
    ) as progress:
        bar = progress.add_task("run", total=duration_s)
        outputs = run_locust(
            plan, on_tick=lambda s: progress.update(bar, completed=min(s, duration_s))
        )
    summary = read_summary(outputs.summary)
    if summary is None:
        tail = outputs.log.read_text()[-3000:] if outputs.log.exists() else ""
        typer.echo(
            f"locust exited {outputs.returncode} without a summary; log {outputs.log}:\n{tail}",
            err=True,
        )
        raise typer.Exit(2)
    png: Path | None = None
    rss = read_rss(outputs.rss_csv) if outputs.rss_csv else []
    growth = rss_growth(rss, warmup_s=min(30.0, duration_s / 5))
    history = read_history(outputs.history_csv) if outputs.history_csv.exists() else []
    if history:
        png = plot_run(
            history,
            out_dir / "latency.png",
            title=f"{host} - {users} users, {rate:g} req/s, refine {refine.value}",
            rss=rss or None,
            p99_target_ms=SloSettings().p99_ms,
        )
    summary["rss_growth"] = growth
    summary["outputs"] = {
        "stats_csv": str(outputs.stats_csv),
        "history_csv": str(outputs.history_csv),
        "html": str(outputs.html),
        "plot": str(png) if png else None,
        "log": str(outputs.log),
    }
    outputs.summary.write_text(json.dumps(summary, indent=2))
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _print_result(summary, outputs, png, growth)
    if outputs.returncode != 0:
        raise typer.Exit(outputs.returncode)


def soak(
    host: str = typer.Option("http://127.0.0.1:8000", "--host", help="Base URL of a running API."),
    users: int = typer.Option(16, "--users", "-u", min=1, help="Simulated client apps."),
    rate: float = typer.Option(50.0, "--rate", "-r", min=0.0, help="Steady requests/s."),
    off_duration: str = typer.Option("10m", "--off-duration", help="Phase 1: refine off."),
    on_duration: str = typer.Option("5m", "--on-duration", help="Phase 2: refine on (0 skips)."),
    budget_ms: int = typer.Option(100, "--budget-ms", min=1, max=10_000, help="Phase 1 budget."),
    on_budget_ms: int = typer.Option(
        1000, "--on-budget-ms", min=1, max=10_000, help="Phase 2 budget (room for the LLM)."
    ),
    api_pid: int | None = typer.Option(
        None, "--api-pid", help="API process whose RSS is sampled (var/stack/api.pid)."
    ),
    max_rss_growth: float = typer.Option(0.10, help="Allowed RSS growth after the first minute."),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default reports/soak-<time>)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Soak: a steady rate with refine off, then with refine on, against one running API; p99
    over time, RSS growth of the API, failures. Exit 1 on any failed request or too much growth."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from loadtest.runner import parse_duration
    from loadtest.soak import SoakPhase, run_soak

    def seconds(text: str, option: str) -> int:
        if text.strip() in {"0", "0s"}:
            return 0
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from exc

    phases = [
        SoakPhase("refine-off", "off", seconds(off_duration, "--off-duration"), budget_ms),
        SoakPhase("refine-on", "on", seconds(on_duration, "--on-duration"), on_budget_ms),
    ]
    phases = [phase for phase in phases if phase.duration_s > 0]
    if not phases:
        raise typer.BadParameter("both phases are 0 s long", param_hint="--off-duration")
    out_dir = out or Path("reports") / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    total = sum(phase.duration_s for phase in phases)
    done: dict[str, float] = {}
    with Progress(
        TextColumn(f"soak: {users} users, {rate:g} req/s"),
        BarColumn(),
        TimeElapsedColumn(),
        disable=as_json,
    ) as progress:
        bar = progress.add_task("soak", total=total)

        def tick(name: str, elapsed: float) -> None:
            done[name] = elapsed
            progress.update(bar, completed=min(total, sum(done.values())))

        result = run_soak(
            host=host.rstrip("/"),
            users=users,
            rate=rate,
            phases=phases,
            out_dir=out_dir,
            api_pid=api_pid,
            max_rss_growth=max_rss_growth,
            on_tick=tick,
        )
    report = {
        "host": host,
        "users": users,
        "rate": rate,
        "phases": [
            {
                key: phase[key]
                for key in ("name", "refine", "duration_s", "budget_ms", "returncode", "out_dir")
            }
            | {
                "figures": phase["summary"]["figures"] if phase["summary"] else None,
                "slo_passed": phase["summary"]["slo"]["passed"] if phase["summary"] else None,
            }
            for phase in result.phases
        ],
        "rss_start_mib": result.rss_start_mib,
        "rss_end_mib": result.rss_end_mib,
        "rss_growth": result.rss_growth,
        "max_rss_growth": max_rss_growth,
        "failures": result.failures,
        "passed": result.passed,
        "plot": str(result.plot) if result.plot else None,
    }
    (out_dir / "soak.json").write_text(json.dumps(report, indent=2))
    if as_json:
        typer.echo(json.dumps(report))
    else:
        table = Table(title=f"soak against {host} ({users} users, {rate:g} req/s)")
        for column in ("phase", "s", "budget", "requests", "failures", "req/s", "p50", "p99"):
            table.add_column(column, justify="right")
        table.add_column("degraded / refined")
        for phase in report["phases"]:
            f = phase["figures"] or {}
            table.add_row(
                phase["name"],
                str(phase["duration_s"]),
                f"{phase['budget_ms']} ms",
                str(f.get("requests", "-")),
                str(f.get("failures", "-")),
                f"{f.get('rps', 0):.1f}",
                f"{f.get('p50_ms', 0):.0f} ms",
                f"{f.get('p99_ms', 0):.0f} ms",
                f"{json.dumps(f.get('degraded_reasons', {}))} / {f.get('refined', 0)}",
            )
        console = Console()
        console.print(table)
        growth = "n/a" if result.rss_growth is None else f"{result.rss_growth:+.1%}"
        console.print(
            f"API RSS {result.rss_start_mib} -> {result.rss_end_mib} MiB ({growth}, "
            f"limit {max_rss_growth:+.0%}); failures {result.failures}; "
            f"{'[green]passed[/]' if result.passed else '[red]FAILED[/]'}"
        )
        console.print(
            f"wrote {out_dir / 'soak.json'}, {result.plot}, per-phase reports in {out_dir}"
        )
    if not result.passed:
        raise typer.Exit(1)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
    app.command("loadtest")(loadtest)
    bench.command("soak")(soak)
