"""Commands of the `models_export` package: export, bundle verify, bench encode / retrieval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# Tables stay readable when piped into a log file (rich falls back to 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 140)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def _print_table(title: str, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """`columns`: row key -> header."""
    table = Table(title=title)
    for header in columns.values():
        table.add_column(
            header, justify="left" if header in ("kind", "arch", "params") else "right"
        )
    for row in rows:
        table.add_row(*(_cell(row.get(key, "")) for key in columns))
    console.print(table)


def export_command(
    run_dir: Path = typer.Argument(..., help="Training run directory (holds checkpoint.pt)."),
    out: Path = typer.Option(
        Path("bundles"), "--out", help="Bundles root; gets <version>/ and current."
    ),
    no_switch: bool = typer.Option(False, "--no-switch", help="Do not point `current` at it."),
    with_text_items: bool = typer.Option(
        False,
        "--with-text-items",
        help="Place items without training interactions by their text (MiniLM; `text` extra).",
    ),
) -> None:
    """Export a trained run to a bundle (ONNX encoder, item index, catalog, manifest)."""
    from models_export.export import export_run
    from training.checkpoint import CheckpointError

    try:
        result = export_run(
            run_dir, out, switch=not no_switch, progress=True, with_text_items=with_text_items
        )
    # ExportError is a RuntimeError; ImportError: --with-text-items without the `text` extra
    except (CheckpointError, RuntimeError, ValueError, ImportError) as exc:
        console.print(f"[red]export failed[/] ({run_dir}): {exc}\n{out} is unchanged")
        raise typer.Exit(1) from None
    manifest = result.manifest
    console.print(
        f"wrote bundle [bold]{manifest.version}[/] to {result.bundle_dir}\n"
        f"  model {manifest.model.arch} dim={manifest.model.dim} K={manifest.model.intents} "
        f"items={manifest.model.n_items}\n"
        f"  onnx parity max |diff| {manifest.onnx.parity_max_abs_diff:.2e} on "
        f"{manifest.onnx.n_parity_sequences} sequences\n"
        f"  index {manifest.index.kind} {manifest.index.params} "
        f"recall@100 {manifest.index.recall_at_100:.4f}"
    )
    if manifest.text_items is not None:
        text = manifest.text_items
        console.print(
            f"  {text.count} items placed by their text; text map recall@100 "
            f"{text.recall_at_100:.3f} on {text.held_out} held-out items "
            f"(popularity {text.popularity_recall_at_100:.3f})"
        )
    if result.current_link is not None:
        console.print(f"  {result.current_link} -> {manifest.version}")


def verify_command(
    bundle_dir: Path = typer.Argument(..., help="Bundle directory, `current`, or bundles root."),
) -> None:
    """Check checksums and schema, load ONNX Runtime and FAISS, re-run parity on samples."""
    from models_export.bundle import BundleError
    from models_export.verify import verify_bundle

    try:
        report = verify_bundle(bundle_dir)
    except BundleError as exc:
        console.print(f"[red]bundle invalid[/]: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"bundle {report.version} OK ({report.bundle_dir}): {len(report.files_checked)} files "
        f"checksummed, parity max |diff| {report.parity_max_abs_diff:.2e} on "
        f"{report.n_parity_sequences} sequences, index {report.index_kind} "
        f"with {report.index_ntotal} items"
    )


def bench_retrieval_command(
    sizes: str = typer.Option("100000,1000000", help="Catalog sizes, comma separated."),
    dim: int = typer.Option(64),
    intents: int = typer.Option(4, help="K query vectors per user."),
    users: int = typer.Option(1000, help="Users timed per size (one search call each)."),
    threads: int = typer.Option(1, help="FAISS OpenMP threads per search."),
    kind: str = typer.Option("", help="Force ivf|hnsw for every size (default: as export)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """FAISS retrieval on synthetic clustered catalogs: build, memory, latency, recall@100."""
    from models_export.bench import bench_retrieval_size
    from models_export.index_build import IndexSettings

    settings = IndexSettings(**({"kind": kind, "flat_max_items": 0} if kind else {}))
    rows = []
    for size in (int(s) for s in sizes.split(",")):
        if not as_json:
            console.print(f"catalog {size:,} items: building and measuring ...")
        rows.append(
            bench_retrieval_size(
                size, dim=dim, intents=intents, users=users, threads=threads, settings=settings
            )
        )
    targets = {"p99_ms_at_1M": 5.0, "recall_at_100": settings.target_recall}
    if as_json:
        print(json.dumps({"bench": "retrieval", "results": rows, "targets": targets}))
        return
    columns = {
        "n_items": "items",
        "kind": "kind",
        "params": "params",
        "build_s": "build s",
        "index_mb": "index MB",
        "rss_delta_mb": "RSS +MB",
        "p50_ms": "p50 ms",
        "p99_ms": "p99 ms",
        "recall_at_100": "recall@100",
        "threads": "thr",
    }
    _print_table(f"retrieval, dim {dim}, K={intents}, per user query", rows, columns)
    for row in rows:
        if row["n_items"] >= 1_000_000:
            ok = (
                row["p99_ms"] <= targets["p99_ms_at_1M"]
                and row["recall_at_100"] >= targets["recall_at_100"]
            )
            console.print(
                f"target 1M: p99 <= 5 ms at recall@100 >= {settings.target_recall}: "
                f"{'[green]met[/]' if ok else '[red]missed[/]'}"
            )


def bench_encode_command(
    archs: str = typer.Option("sasrec,disen", help="Encoders, comma separated."),
    batches: str = typer.Option("1,64", help="Batch sizes, comma separated."),
    seq: int = typer.Option(50, help="Sequence length (full, no padding)."),
    n_items: int = typer.Option(10_000, help="Catalog size of the random-weight encoders."),
    dim: int = typer.Option(64),
    layers: int = typer.Option(2),
    intents: int = typer.Option(4, help="K for disen."),
    # 1 by default: figures on a shared 2-core host are stable only without thread teams.
    threads: int = typer.Option(1, help="Intra-op threads for both torch and ONNX Runtime."),
    repeats: int = typer.Option(200, help="Timed calls at batch 1 (a quarter at larger batches)."),
    device: str = typer.Option("cpu", help="cpu | cuda (also times ONNX Runtime's CUDA provider)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Encoder latency: ONNX Runtime vs torch eager (median and p99 per call, speed-up)."""
    from models_export.bench import bench_encode_arch

    rows = []
    for arch in archs.split(","):
        if not as_json:
            console.print(f"{arch}: exporting and timing ...")
        rows += bench_encode_arch(
            arch,
            batches=tuple(int(b) for b in batches.split(",")),
            seq_len=seq,
            n_items=n_items,
            dim=dim,
            layers=layers,
            intents=intents,
            threads=threads,
            repeats=repeats,
            device=device,
        )
    target = {"speedup_p50_at_batch_1": 2.0}
    if as_json:
        print(json.dumps({"bench": "encode", "results": rows, "targets": target}))
        return
    columns = {
        "arch": "arch",
        "batch": "batch",
        "seq": "seq",
        "torch_p50_ms": "torch p50 ms",
        "torch_p99_ms": "torch p99 ms",
        "ort_p50_ms": "ORT p50 ms",
        "ort_p99_ms": "ORT p99 ms",
        "speedup_p50": "torch/ORT",
        "ort_graph_without_weights_p50_ms": "ORT no-weights graph p50",
        "ort_explain_p50_ms": "ORT + weights p50",
        "threads": "thr",
    }
    _print_table(f"encoder latency, dim {dim}, {layers} layers, {n_items} items", rows, columns)
    for row in rows:
        if row["batch"] == 1:
            ok = row["speedup_p50"] >= target["speedup_p50_at_batch_1"]
            console.print(
                f"target {row['arch']} batch 1: ORT >= 2x faster than torch eager: "
                f"{'[green]met[/]' if ok else '[red]missed[/]'} ({row['speedup_p50']}x)"
            )


def bench_text_items_command(
    run_dir: Path = typer.Argument(..., help="Training run directory (holds checkpoint.pt)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """How items new to training rank on test, with and without the text map."""
    from models_export.new_items_bench import bench_text_items

    try:
        report = bench_text_items(run_dir)
    except (ValueError, ImportError) as exc:
        console.print(f"[red]error[/]: {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report))
        return
    for name, value in report.items():
        console.print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
    app.command("export")(export_command)
    bundle = typer.Typer(help="Inspect and check exported bundles.", no_args_is_help=True)
    bundle.command("verify")(verify_command)
    app.add_typer(bundle, name="bundle")
    bench.command("retrieval")(bench_retrieval_command)
    bench.command("encode")(bench_encode_command)
    bench.command("text-items")(bench_text_items_command)
