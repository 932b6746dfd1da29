"""Commands of the `training` package: train, evaluate, data."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from training import data_cli
from training.config import (
    ENCODER_CONFIGS,
    LARGE_VALIDATION_PATIENCE,
    LARGE_VALIDATION_USERS,
    SMALL_VALIDATION_PATIENCE,
    DisenConfig,
    ObjectiveConfig,
    TrainConfig,
    default_of,
    known_options,
)

console = Console()


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this package's commands to the `intentrec` CLI."""
    data_cli.register(app, bench)
    app.command("train")(train)
    app.command("tune")(tune)
    app.command("search")(search)
    app.command("evaluate")(evaluate)
    app.command("report")(report)
    bench.command("train")(bench_train)


def _default(name: str) -> str:
    """An option's default per model, as `train_config` applies it (shown in --help)."""
    values = {
        arch: default_of(name, arch) for arch in ENCODER_CONFIGS if name in known_options(arch)
    }
    if len(set(map(repr, values.values()))) == 1:
        return f"(default {next(iter(values.values()))})"
    return "(default " + ", ".join(f"{arch} {value}" for arch, value in values.items()) + ")"


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
        int | None,
        typer.Option(
            help=f"Keep users and items with at least k actions (0 = off). {_default('k_core')}"
        ),
    ] = None,
    dim: Annotated[int | None, typer.Option(help=_default("dim"))] = None,
    layers: Annotated[int | None, typer.Option(help=_default("layers"))] = None,
    heads: Annotated[int | None, typer.Option(help=_default("heads"))] = None,
    dropout: Annotated[float | None, typer.Option(help=_default("dropout"))] = None,
    attention_dropout: Annotated[
        float | None,
        typer.Option(
            help="Dropout on the attention weights; at 0 long sequences train ~1.7x faster "
            "(the attention kernel samples it slowly). (default: --dropout)"
        ),
    ] = None,
    max_len: Annotated[
        int | None,
        typer.Option(help=f"Most recent items the encoder sees. {_default('max_len')}"),
    ] = None,
    intents: Annotated[
        int | None,
        typer.Option(help=f"K intent vectors (disen). {_default('intents')}"),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(help=f"Intent assignment temperature (disen). {_default('temperature')}"),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option(
            help=f"ce (full softmax) | bce (sampled negatives) | sampled. {_default('loss')}"
        ),
    ] = None,
    negatives: Annotated[
        int | None,
        typer.Option(help=f"Negatives per positive for bce / sampled. {_default('negatives')}"),
    ] = None,
    s2s_weight: Annotated[
        float | None,
        typer.Option(
            help=f"Weight of the sequence-to-sequence loss (disen). {_default('s2s_weight')}"
        ),
    ] = None,
    s2s_lambda: Annotated[
        float | None,
        typer.Option(help=f"Share of S2S terms kept, 0.1..0.6 (disen). {_default('s2s_lambda')}"),
    ] = None,
    s2i_only: Annotated[
        bool | None,
        typer.Option(help=f"Ablation: train DisenSeq with S2I only. {_default('s2i_only')}"),
    ] = None,
    future_len: Annotated[
        int | None,
        typer.Option(
            help=f"Longest future subsequence of the S2S loss (disen). {_default('future_len')}"
        ),
    ] = None,
    s2i_share: Annotated[
        float | None,
        typer.Option(
            help="Share of the window's prefixes given an S2I prediction (disen). "
            "(default 1 / intents)"
        ),
    ] = None,
    s2i_scale: Annotated[
        float | None,
        typer.Option(help=f"DisenSeq S2I logit scale. {_default('s2i_scale')}"),
    ] = None,
    label_smoothing: Annotated[
        float | None,
        typer.Option(
            help=f"Share of each target's probability spread evenly over all items (ce, "
            f"sampled). {_default('label_smoothing')}"
        ),
    ] = None,
    lr: Annotated[float | None, typer.Option(help=_default("lr"))] = None,
    weight_decay: Annotated[float | None, typer.Option(help=_default("weight_decay"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=_default("batch_size"))] = None,
    epochs: Annotated[int | None, typer.Option(help=_default("epochs"))] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Evaluations without gain before stopping (default "
            f"{SMALL_VALIDATION_PATIENCE}, {LARGE_VALIDATION_PATIENCE} when validation has "
            f"{LARGE_VALIDATION_USERS:,} users or more)"
        ),
    ] = None,
    lr_decay: Annotated[
        float | None,
        typer.Option(
            help="Multiply the learning rate by this when validation stalls (1 = constant). "
            f"{_default('lr_decay')}"
        ),
    ] = None,
    lr_decay_patience: Annotated[
        int | None,
        typer.Option(
            help="Evaluations without gain before the learning rate decays "
            "(default a quarter of the patience)"
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help=_default("seed"))] = None,
    eval_every: Annotated[int | None, typer.Option(help=_default("eval_every"))] = None,
    history: Annotated[
        str | None,
        typer.Option(help=f"Full ranking: masked (history removed) | kept. {_default('history')}"),
    ] = None,
    recent_window_share: Annotated[
        float | None,
        typer.Option(
            help=f"Share of training windows ending at the latest action. "
            f"{_default('recent_window_share')}"
        ),
    ] = None,
    whole_history: Annotated[
        bool | None,
        typer.Option(
            help="Train every epoch on every action: long histories cut into consecutive "
            f"windows (--recent-window-share is then unused). {_default('whole_history')}"
        ),
    ] = None,
    length_batches: Annotated[
        bool | None,
        typer.Option(
            help="Batch windows of about the same length: far less padding when most histories "
            f"are short. {_default('length_batches')}"
        ),
    ] = None,
    new_items: Annotated[
        float | None,
        typer.Option(
            help=f"Share of items held out of training as if new (to measure how new items "
            f"rank, e.g. with `export --with-text-items`). {_default('new_items')}"
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads (default all CPUs).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help=f"auto (a CUDA GPU when torch sees one) | cpu | cuda[:N]. {_default('device')}"
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="JSON file of training options (e.g. `intentrec tune`'s best_config.json); "
            "options given on the command line win.",
        ),
    ] = None,
    arch_file: Annotated[
        Path | None,
        typer.Option(
            "--arch",
            help="A searched trunk architecture (`intentrec search`'s architecture.json) "
            "instead of the hand-designed SASRec blocks (--layers is then unused).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option(help="Show the traceback of a data or option error.")
    ] = False,
) -> None:
    """Train an encoder, evaluate it on the test split, write checkpoint.pt and metrics.json."""
    from training.architecture import load_architecture
    from training.config import train_config
    from training.data_cli import exit_on_bad_input
    from training.report import beyond_accuracy_table, metrics_table
    from training.train import run_training

    options = {
        "data": data, "fmt": fmt, "k_core": k_core, "model": model, "dim": dim,
        "layers": layers, "heads": heads, "dropout": dropout,
        "attention_dropout": attention_dropout, "max_len": max_len,
        "intents": intents, "temperature": temperature, "loss": loss, "negatives": negatives,
        "s2s_weight": s2s_weight, "s2s_lambda": s2s_lambda, "s2i_only": s2i_only,
        "future_len": future_len, "s2i_share": s2i_share, "s2i_scale": s2i_scale,
        "label_smoothing": label_smoothing, "lr": lr,
        "weight_decay": weight_decay, "batch_size": batch_size, "epochs": epochs,
        "patience": patience, "lr_decay": lr_decay, "lr_decay_patience": lr_decay_patience,
        "seed": seed, "eval_every": eval_every, "history": history,
        "recent_window_share": recent_window_share, "whole_history": whole_history,
        "length_batches": length_batches, "new_items": new_items, "threads": threads,
        "device": device,
    }  # fmt: skip
    with exit_on_bad_input(debug):
        if config_file is not None:
            options |= _file_values_not_given(ctx, config_file)
        if arch_file is not None:
            options["trunk"] = load_architecture(arch_file).to_dict()
        # Options not given keep the defaults their config class defines.
        config = train_config(**{k: v for k, v in options.items() if v is not None})
        model = config.model.arch
        result = run_training(config, out, keep_on_interrupt=True)
    metrics = result.metrics
    console.print(metrics_table(metrics, title=f"{model} on {metrics['data']['name']}"))
    console.print(beyond_accuracy_table(metrics))
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
    max_trial_minutes: Annotated[
        float, typer.Option(min=0.01, help="Training time a trial may take (ASHA's max_t).")
    ] = 10.0,
    grace_minutes: Annotated[
        float,
        typer.Option(min=0.01, help="Training time every trial gets before ASHA may stop it."),
    ] = 1.0,
    max_epochs: Annotated[int, typer.Option(min=1, help="Epochs a trial may run.")] = 200,
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
    from training.tune import TuneOptions, run_search

    base = {"data": data, "fmt": fmt, "model": model, "patience": patience, "seed": seed}
    options = TuneOptions(
        trials=trials, max_trial_minutes=max_trial_minutes, grace_minutes=grace_minutes,
        max_epochs=max_epochs, cpus_per_trial=cpus_per_trial, address=address, seed=seed,
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


def search(
    data: Annotated[str, typer.Option(help="Data folder or file (format detected).")] = (
        "data/ml-100k"
    ),
    model: Annotated[str, typer.Option(help="sasrec | disen")] = "disen",
    fmt: Annotated[str | None, typer.Option("--format", help="As for `train`.")] = None,
    out: Annotated[
        Path,
        typer.Option(help="Folder for architecture.json, best_config.json, the log and plot."),
    ] = Path("runs/search"),
    layers: Annotated[int, typer.Option(min=1, help="Hidden layers W of the trunk.")] = 6,
    generations: Annotated[int, typer.Option(min=1, help="Generations of the evolution.")] = 10,
    population: Annotated[int, typer.Option(min=2, help="Architectures per generation.")] = 20,
    supernet_epochs: Annotated[
        int, typer.Option(min=1, help="Epochs of supernet training (one path per batch).")
    ] = 60,
    retrain_top: Annotated[
        int, typer.Option(min=1, help="Best architectures retrained from scratch.")
    ] = 3,
    compare_hand_designed: Annotated[
        bool, typer.Option(help="Also retrain the hand-designed trunk as the reference.")
    ] = True,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="JSON file of training options the search and retraining use (e.g. "
            "`intentrec tune`'s best_config.json); default: the model's defaults.",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads (default all CPUs).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the supernet, the evolution, retraining.")] = 0,
    debug: Annotated[
        bool, typer.Option(help="Show the traceback of a data or option error.")
    ] = False,
) -> None:
    """Architecture search (supernet + evolution, AutoDisenSeq Section 4.2) on validation."""
    from training.data_cli import exit_on_bad_input
    from training.search.evolution import EvolutionOptions
    from training.search.run import SearchOptions, search_architecture
    from training.tune import read_config_file

    with exit_on_bad_input(debug):
        base: dict[str, object] = {"model": model}
        if config_file is not None:
            base |= read_config_file(config_file)
            base.pop("trunk", None)
        base |= {"data": data, "fmt": fmt, "seed": seed, "threads": threads}
        base = {k: v for k, v in base.items() if v is not None}
        options = SearchOptions(
            depth=layers,
            supernet_epochs=supernet_epochs,
            evolution=EvolutionOptions(population=population, generations=generations),
            retrain_top=retrain_top,
            compare_hand_designed=compare_hand_designed,
        )
        result = search_architecture(base, out, options, console)
    for row in result.retrained:
        console.print(
            f"retrained {row['architecture']}: validation NDCG@10 {row['valid_ndcg@10']:.4f} "
            f"(best epoch {row['best_epoch']}, {row['seconds']} s)",
            soft_wrap=True,
        )
    console.print(
        f"space {result.space_size:,} architectures, {result.evaluated} evaluated; best "
        f"{result.best.describe()} at validation NDCG@10 {result.best_valid_ndcg:.4f}",
        soft_wrap=True,
    )
    console.print("wrote " + ", ".join(str(path) for path in result.paths.values()), soft_wrap=True)
    console.print(
        f"train it: intentrec train --data {data} --config {result.paths['config']}",
        soft_wrap=True,
    )


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `intentrec train`.")],
    history: Annotated[str | None, typer.Option(help="masked | kept (default: as trained)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Evaluate a trained run on the test split (full ranking, sampled, cold start)."""
    from training.evaluate import evaluate_run
    from training.report import beyond_accuracy_table, metrics_table

    metrics = evaluate_run(run_dir, history=history)
    if as_json:
        print(json.dumps(metrics))
        return
    console.print(metrics_table(metrics, title=f"test metrics of {run_dir}"))
    console.print(beyond_accuracy_table(metrics))
    console.print(f"updated {run_dir / 'metrics.json'}")


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `intentrec train`.")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file to write (default: RUN_DIR/report.html).")
    ] = None,
    debug: Annotated[
        bool, typer.Option(help="Show the traceback of a data or option error.")
    ] = False,
) -> None:
    """Write one HTML page of a run's accuracy and beyond-accuracy figures, with exposure plots."""
    from training.data_cli import exit_on_bad_input
    from training.run_report import write_run_report

    with exit_on_bad_input(debug):
        path = write_run_report(run_dir, out)
    console.print(f"wrote {path}")


def bench_train(
    preset: Annotated[
        str, typer.Option(help="foundation | disen | defaults | intents | ablation | sweep | tune")
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

    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    # The annotations of every option's field (strings: the modules use postponed annotations).
    kinds = {f.name: str(f.type) for cls in (DisenConfig, ObjectiveConfig, TrainConfig)
             for f in fields(cls)} | {"model": "str"}  # fmt: skip
    known = known_options("disen")
    base: dict[str, object] = {"data": data}
    for item in overrides or []:
        key, _, value = item.partition("=")
        if key not in known:
            raise typer.BadParameter(f"--set {item}: unknown training option {key!r}")
        kind = kinds[key]
        if kind.startswith("bool"):
            base[key] = value.lower() in ("1", "true", "yes")
        else:
            base[key] = (
                int(value)
                if kind.startswith("int")
                else (float(value) if kind.startswith("float") else value)
            )
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
