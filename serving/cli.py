"""Commands of the `serving` package: `intentrec serve` and `intentrec bench serve`.

Each command is a module-level function registered in `register`, so more commands (the LLM
server, refine evaluation) are added the same way. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer


def _share_metrics(workers: int) -> tuple[Path | None, bool]:
    """Point the workers' metrics at one directory (PROMETHEUS_MULTIPROC_DIR) so /metrics sums
    them: the operator's, emptied of a previous run's files, or with several workers a fresh
    private one. Returns the directory (None: single process) and whether it is ours to remove."""
    from serving.metrics import MULTIPROC_DIR_ENV, multiprocess_dir

    configured = multiprocess_dir()
    if configured is not None:
        configured.mkdir(parents=True, exist_ok=True)
        for stale in configured.glob("*.db"):
            stale.unlink()  # a previous run's counts would be added to this one's
        return configured, False
    os.environ.pop(MULTIPROC_DIR_ENV, None)  # set but empty: prometheus_client would write to cwd
    if workers == 1:
        return None, False
    path = Path(tempfile.mkdtemp(prefix="intentrec-metrics-"))
    os.environ[MULTIPROC_DIR_ENV] = str(path)
    return path, True


def serve_command(
    bundle: Path | None = typer.Option(
        None, help="Bundle directory or bundles root (default INTENTREC_BUNDLE_DIR)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Server processes (uvicorn --workers)."),
    data_dir: Path | None = typer.Option(
        None, help="Embedded Redis data and caches (default INTENTREC_DATA_DIR)."
    ),
    redis_url: str | None = typer.Option(
        None, help="Use this Redis instead of the embedded one (default INTENTREC_REDIS_URL)."
    ),
    access_log: bool = typer.Option(False, help="Log every request (costs throughput)."),
) -> None:
    """Run the recommendation API under uvicorn."""
    import uvicorn
    from rich.console import Console

    from serving.clients.embedded_redis import EmbeddedRedis
    from serving.settings import Settings

    overrides = {"BUNDLE_DIR": bundle, "DATA_DIR": data_dir, "REDIS_URL": redis_url}
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"INTENTREC_{name}"] = str(value)
    settings = Settings()  # fails here, before any server starts, on a bad setting
    console = Console(stderr=True)
    metrics_dir, own_metrics_dir = _share_metrics(workers)
    if metrics_dir is not None:
        console.print(f"worker metrics kept in {metrics_dir}; /metrics reports their sum")
    embedded = None
    try:
        if workers > 1 and settings.redis_url is None:
            # One redis-server for all workers; each worker would otherwise start its own.
            embedded = EmbeddedRedis(settings.data_dir, settings.redis_fsync)
            os.environ["INTENTREC_REDIS_URL"] = embedded.start()
            console.print(f"embedded redis-server at {embedded.url} (data in {embedded.dir})")
        console.print(
            f"serving {settings.bundle_dir} on http://{host}:{port} ({workers} worker(s)); "
            f"docs at http://{host}:{port}/docs"
        )
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            log_level="info",
        )
    finally:
        if embedded is not None:
            embedded.stop()
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def bench_serve_command(
    url: str | None = typer.Option(
        None, help="Target a running server; by default one is started on 127.0.0.1."
    ),
    bundle: Path | None = typer.Option(
        None, help="Bundle the requests are drawn from, served by the started server."
    ),
    duration: float = typer.Option(5.0, min=0.5, help="Seconds per load scenario."),
    concurrency: str = typer.Option("1,8,32", help="Closed-loop client counts."),
    rates: str = typer.Option("200", help="Open-loop request rates (req/s)."),
    budget_ms: float = typer.Option(100.0, help="budget_ms of every request."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Load-test /recommend (closed and open loop), with GET /healthz at one client as the floor."""
    from serving.bench import BenchOptions, print_report, run_bench

    options = BenchOptions(
        url=url,
        bundle=bundle,
        duration_s=duration,
        concurrency=[int(c) for c in concurrency.split(",") if c.strip()],
        rates=[float(r) for r in rates.split(",") if r.strip()],
        budget_ms=budget_ms,
        progress=not json_out,
    )
    report = run_bench(options)
    print_report(report, json_out)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
    app.command("serve")(serve_command)
    bench.command("serve")(bench_serve_command)
