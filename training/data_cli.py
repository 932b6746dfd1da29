"""`intentrec data ...` (stats, synth) and `intentrec bench data`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from training.data import SequenceDataset

PathArg = Annotated[Path, typer.Argument(help="Data set folder or file.")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="atomic | movielens | text | seqline | csv | parquet (default: detect).",
    ),
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(help="Column mapping for csv/parquet/atomic: user=uid,item=iid,time=ts."),
]
KCoreOpt = Annotated[
    int, typer.Option("--k-core", min=0, help="Keep users and items with >= k actions.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


@contextmanager
def exit_on_bad_input(debug: bool = False) -> Iterator[None]:
    """Bad input (a missing path, a malformed file, an impossible option) ends the command with
    its one-line message and status 2; `debug` lets the traceback through instead."""
    try:
        yield
    except (ValueError, FileNotFoundError) as exc:  # DataFormatError is a ValueError
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _load(
    path: Path, fmt: str | None, columns: str | None, k_core: int, cache_dir: str | None = None
) -> SequenceDataset:
    """Load, or exit with status 2 and the reader's message on bad input."""
    from training.data import load_dataset

    with exit_on_bad_input():
        return load_dataset(path, fmt=fmt, columns=columns, k_core=k_core, cache_dir=cache_dir)


def _print_table(title: str, figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        table.add_row(key, shown)
    Console().print(table)


def stats(
    path: PathArg,
    fmt: FormatOpt = None,
    columns: ColumnsOpt = None,
    k_core: KCoreOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Users, items, actions and sequence-length percentiles after filtering."""
    dataset = _load(path, fmt, columns, k_core)
    figures = {**dataset.stats(), "format": dataset.options.get("fmt"), "k_core": k_core}
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        _print_table(f"data set {dataset.name} ({path})", figures)


def synth(
    out: Annotated[Path, typer.Option(help="Output: a .txt file (text) or a folder (atomic).")],
    users: Annotated[int, typer.Option(min=1)] = 1000,
    items: Annotated[int, typer.Option(min=1)] = 500,
    actions: Annotated[int, typer.Option(min=3)] = 20_000,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="text | atomic (default: text for *.txt, else atomic)."
        ),
    ] = None,
    zipf: Annotated[float, typer.Option(help="Item popularity exponent.")] = 1.1,
    seed: int = 0,
) -> None:
    """Write a synthetic data set with long-tail popularity and sequential structure."""
    from training.data.synthetic import SynthConfig, generate, write_synthetic

    fmt = fmt or ("text" if out.suffix == ".txt" else "atomic")
    try:
        data = generate(
            SynthConfig(users=users, items=items, actions=actions, zipf=zipf, seed=seed)
        )
        written = write_synthetic(data, out, fmt)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {actions:,} actions of {users:,} users over {items:,} items ({fmt}):")
    for path in written:
        typer.echo(f"  {path}")


def bench_data(
    path: PathArg,
    fmt: FormatOpt = None,
    columns: ColumnsOpt = None,
    k_core: KCoreOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Time a cold load (parse + process + cache write) and a cached load; peak RSS."""
    import resource
    import tempfile
    import time

    with tempfile.TemporaryDirectory(prefix="intentrec-bench-data-") as cache_dir:
        start = time.perf_counter()
        dataset = _load(path, fmt, columns, k_core, cache_dir)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        _load(path, fmt, columns, k_core, cache_dir)
        warm = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    figures = {
        "actions": dataset.n_actions,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "cold_load_s": round(cold, 3),
        "cached_load_s": round(warm, 3),
        "actions_per_s_cold": round(dataset.n_actions / cold, 1),
        "peak_rss_mb": round(peak_kib / 1024, 1),
    }
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        _print_table(f"data load ({path})", figures)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add `intentrec data stats|synth` and `intentrec bench data`."""
    data = typer.Typer(help="Inspect and generate data sets.", no_args_is_help=True)
    data.command("stats")(stats)
    data.command("synth")(synth)
    app.add_typer(data, name="data")
    bench.command("data")(bench_data)
