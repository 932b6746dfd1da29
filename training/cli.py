"""Commands of the `training` package: train, evaluate, data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from training import data_cli

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
    data_cli.register(app, bench)
    app.command("train")(train)
    app.command("tune")(tune)
    app.command("evaluate")(evaluate)
    bench.command("train")(bench_train)


def train(
    ctx: typer.Context,
    data: Annotated[
        str, typer.Option(help="Data folder or file (format detected).")
    ] = "data/ml-100k",
    out: Annotated[
        Path, typer.Option(help="Run directory for checkpoint.pt and metrics.json.")
    ] = Path("runs/latest"),
    model: Annotated[str, typer.Option(help="sasrec | disen")] = "sasrec",
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="atomic | movielens | text | seqline | csv | parquet"),
    ] = None,
    k_core: Annotated[
        int, typer.Option(help="Keep users and items with at least k actions (0 = off).")
    ] = 0,
    dim: int = 64,
    layers: int = 2,
    heads: int = 1,
    dropout: float = 0.2,
    max_len: Annotated[int, typer.Option(help="Most recent items the encoder sees.")] = 50,
    intents: Annotated[int, typer.Option(help="K intent vectors (disen).")] = 4,
    temperature: Annotated[
        float, typer.Option(help="Intent assignment temperature (disen).")
    ] = 0.1,
    loss: Annotated[
        str, typer.Option(help="ce (full softmax) | bce (sampled negatives) | sampled")
    ] = "ce",
    negatives: Annotated[int, typer.Option(help="Negatives per positive for bce / sampled.")] = 1,
    s2s_weight: Annotated[
        float, typer.Option(help="Weight of the sequence-to-sequence loss (disen).")
    ] = 0.01,
    s2s_lambda: Annotated[
        float, typer.Option(help="Share of S2S terms kept, 0.1..0.6 (disen).")
    ] = 0.6,
    s2i_only: Annotated[bool, typer.Option(help="Ablation: train DisenSeq with S2I only.")] = False,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    epochs: int = 200,
    patience: Annotated[int, typer.Option(help="Evaluations without gain before stopping.")] = 40,
    seed: int = 42,
    eval_every: int = 1,
    history: Annotated[
        str, typer.Option(help="Full ranking: masked (history removed) | kept")
    ] = "masked",
    recent_window_share: Annotated[
        float, typer.Option(help="Share of training windows ending at the latest action.")
    ] = 1.0,
    device: Annotated[
        str, typer.Option(help="auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]")
    ] = "auto",
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="JSON file of training options (e.g. `intentrec tune`'s best_config.json); "
            "options given on the command line win.",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option(help="Show the traceback of a data or option error.")
    ] = False,
) -> None:
    """Train an encoder, evaluate it on the test split, write checkpoint.pt and metrics.json."""
    from training.data_cli import exit_on_bad_input
    from training.report import metrics_table
    from training.train import TrainConfig, run_training

    values = dict(
        data=data, fmt=fmt, k_core=k_core, model=model, dim=dim, layers=layers, heads=heads,
        dropout=dropout, max_len=max_len, intents=intents, temperature=temperature,
        loss=loss, negatives=negatives, s2s_weight=s2s_weight, s2s_lambda=s2s_lambda,
        s2i_only=s2i_only, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
        epochs=epochs, patience=patience, seed=seed, eval_every=eval_every, history=history,
        recent_window_share=recent_window_share, device=device,
    )  # fmt: skip
    with exit_on_bad_input(debug):
        if config_file is not None:
            values |= _file_values_not_given(ctx, config_file)
        config = TrainConfig(**values)
        model = config.model
        result = run_training(config, out)
    metrics = result.metrics
    console.print(metrics_table(metrics, title=f"{model} on {metrics['data']['name']}"))
    console.print(f"{metrics['stopped']}; {metrics['train_seconds']:.1f} s")
    console.print(f"wrote {result.checkpoint_path} and {out / 'metrics.json'}")


def _file_values_not_given(ctx: typer.Context, path: Path) -> dict[str, object]:
    """The file's options, less those typed on the command line (those win)."""
    from training.tune import read_config_file

    def typed(name: str) -> bool:
        # by name: typer carries its own copy of click, whose enum is not click's
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    return {name: value for name, value in read_config_file(path).items() if not typed(name)}


def tune(
    data: Annotated[str, typer.Option(help="Data folder or file (format detected).")] = (
        "data/ml-100k"
    ),
    model: Annotated[str, typer.Option(help="sasrec | disen")] = "sasrec",
    fmt: Annotated[str | None, typer.Option("--format", help="As for `train`.")] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for best_config.json, trials.csv, the plot, Ray's logs.")
    ] = Path("runs/tune"),
    trials: Annotated[int, typer.Option(min=1, help="Configurations sampled.")] = 20,
    max_epochs: Annotated[int, typer.Option(min=1, help="Epochs a trial may run.")] = 60,
    grace_epochs: Annotated[
        int, typer.Option(min=1, help="Epochs every trial runs before ASHA may stop it.")
    ] = 10,
    patience: Annotated[
        int, typer.Option(min=1, help="A trial also stops after this many epochs without gain.")
    ] = 15,
    cpus_per_trial: Annotated[
        int, typer.Option(min=1, help="Cores (torch threads) per trial.")
    ] = 1,
    address: Annotated[
        str | None, typer.Option(help="An existing Ray cluster (default: Ray in this process).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed of the search and of each trial.")] = 0,
    debug: Annotated[
        bool, typer.Option(help="Show the traceback of a data or option error.")
    ] = False,
) -> None:
    """Hyper-parameter search (Ray Tune, ASHA) on validation NDCG@10; test is not looked at."""
    from training.data_cli import exit_on_bad_input
    from training.train import TrainConfig
    from training.tune import TuneOptions, run_search

    base = TrainConfig(data=data, fmt=fmt, model=model, patience=patience, seed=seed)
    options = TuneOptions(
        trials=trials, max_epochs=max_epochs, grace_epochs=grace_epochs,
        cpus_per_trial=cpus_per_trial, address=address, seed=seed,
    )  # fmt: skip
    with exit_on_bad_input(debug):
        result = run_search(base, out, options)
    failed = sum(1 for trial in result.trials if trial["error"])
    console.print(
        f"{len(result.trials)} trials ({failed} failed); best validation NDCG@10 "
        f"{result.best_valid_ndcg:.4f} with {json.dumps(result.best_config)}",
        soft_wrap=True,
    )
    console.print(
        f"wrote {result.best_config_path}, {result.trials_path} and {result.plot_path}",
        soft_wrap=True,
    )
    console.print(
        f"train it: intentrec train --data {data} --config {result.best_config_path}",
        soft_wrap=True,
    )


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `intentrec train`.")],
    history: Annotated[str | None, typer.Option(help="masked | kept (default: as trained)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a trained run on the test split (full ranking, sampled, cold start)."""
    from training.evaluate import evaluate_run
    from training.report import metrics_table

    metrics = evaluate_run(run_dir, history=history)
    if as_json:
        print(json.dumps(metrics))
        return
    console.print(metrics_table(metrics, title=f"test metrics of {run_dir}"))
    console.print(f"updated {run_dir / 'metrics.json'}")


def bench_train(
    preset: Annotated[
        str, typer.Option(help="foundation | ablation | sweep | tune")
    ] = "foundation",
    data: Annotated[str, typer.Option(help="Data folder or file.")] = "data/ml-100k",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "1,2,3",
    out: Annotated[Path, typer.Option(help="Root folder for the runs.")] = Path("runs/bench"),
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Base training option, e.g. --set dropout=0.3")
    ] = None,
    reuse: Annotated[
        bool, typer.Option(help="Re-evaluate runs already under --out instead of training again.")
    ] = False,
    jobs: Annotated[
        int, typer.Option(min=1, help="Runs trained at once, each in its own process.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train each variant of a preset over several seeds; report test metrics as mean +- std."""
    from rich.table import Table

    from training.bench import PRESETS, run_preset
    from training.train import TrainConfig

    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    field_types = {name: type(value) for name, value in TrainConfig(data=data).__dict__.items()}
    base: dict[str, object] = {"data": data}
    for item in overrides or []:
        key, _, value = item.partition("=")
        if key not in field_types:
            raise typer.BadParameter(f"--set {item}: unknown training option {key!r}")
        kind = field_types[key]
        base[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    seed_list = [int(s) for s in seeds.split(",")]
    results = run_preset(
        PRESETS[preset], seed_list, base, out, progress=not as_json, reuse=reuse, jobs=jobs
    )
    report = {"preset": preset, "data": data, "seeds": seed_list, "base": base, "variants": results}
    if as_json:
        print(json.dumps(report))
        return
    columns = [
        "full/ndcg@10",
        "full/hr@10",
        "full_history_kept/ndcg@10",
        "sampled_popularity_100/ndcg@10",
        "sampled_popularity_100/hr@10",
        "cold_start_last5/ndcg@10",
        "valid/ndcg@10",
        "train_seconds",
    ]
    table = Table(
        title=f"bench train --preset {preset} (test, mean +- std over {len(seed_list)} seeds)"
    )
    table.add_column("variant")
    for column in columns:
        table.add_column(column, justify="right")
    for name, summary in results.items():
        cells = [f"{summary[c]['mean']:.4f} +- {summary[c]['std']:.4f}" for c in columns[:-1]]
        cells.append(
            f"{summary['train_seconds']['mean']:.0f} +- {summary['train_seconds']['std']:.0f}"
        )
        table.add_row(name, *cells)
    console.print(table)
    console.print(f"runs under {out}; full = history masked, kept = history kept")
