"""`intentrec tune`: hyper-parameter search with Ray Tune and the ASHA scheduler.

Every trial trains on the training split and reports full-ranking validation NDCG@10 after each
epoch; ASHA ends the weak trials at its rungs, set in minutes of training time. Test is never
evaluated here: the best trial's settings go into a file that `intentrec train --config FILE`
takes, and that run reports test.
The space follows the seed paper (section 5.3: D in {64, 128, 256}, 2..6 layers, lambda in
0.1..0.6), widened with learning rate, dropout, max_len, K, the S2S weight and the loss.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.config import (
    ENCODER_CONFIGS,
    ObjectiveConfig,
    TrainConfig,
    flat_options,
    known_options,
    train_config,
)
from training.data import SequenceDataset, load_run_data
from training.train import EARLY_STOP_METRIC, fit

BEST_CONFIG_FILE = "best_config.json"
TRIALS_FILE = "trials.csv"
PLOT_FILE = "valid_ndcg_vs_time.png"
# Where the run happens and what it reads are not hyper-parameters: they stay out of the file
# that `train --config` takes, so the same file trains on another machine or data path.
NOT_SEARCHED = (
    "data", "fmt", "k_core", "new_items", "threads", "device", "epochs", "seed", "eval_every"
)  # fmt: skip


def search_space(model: str) -> dict[str, Any]:
    from ray import tune

    space: dict[str, Any] = {
        "dim": tune.choice([64, 128, 256]),
        "layers": tune.randint(2, 7),
        "heads": tune.choice([1, 2]),
        "dropout": tune.quniform(0.1, 0.5, 0.05),
        "lr": tune.loguniform(3e-4, 3e-3),
        "max_len": tune.choice([50, 100, 200]),
        "loss": tune.choice(["ce", "bce"]),
        # at max_len 50 most of a long history is trained on only through earlier windows
        "recent_window_share": tune.choice([1.0, 0.5, 0.2]),
    }
    if model == "disen":
        space |= {
            "intents": tune.choice([1, 2, 4]),
            "s2s_lambda": tune.choice([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
            "s2s_weight": tune.choice([0.0, 0.001, 0.01, 0.1]),
        }
    return space


@dataclass(frozen=True)
class TuneOptions:
    trials: int = 20
    # ASHA budgets trials by their training time, not epochs: an epoch's cost varies 20x across
    # the space (dim, layers, max_len), and the product's bar is quality within a time budget.
    # max_trial_minutes: a trial's longest run (the default is the 10-minute training target);
    # grace_minutes: what every trial gets before ASHA's first cut
    max_trial_minutes: float = 10.0
    grace_minutes: float = 1.0
    max_epochs: int = 200
    reduction_factor: int = 3
    cpus_per_trial: int = 1
    address: str | None = None  # an existing Ray cluster; None starts Ray in this process
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class TuneResult:
    best_config: dict[str, Any]
    best_valid_ndcg: float
    trials: list[dict[str, Any]]
    best_config_path: Path
    trials_path: Path
    plot_path: Path


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> TrainConfig:
    """The run's flat options with one trial's sampled values; an unknown name is refused."""
    return train_config(**(base | params))


def config_file_values(config: TrainConfig) -> dict[str, Any]:
    """The file's options; floats to 12 significant digits (Ray's quantised draws come back as
    0.30000000000000004)."""
    return {
        k: float(f"{v:.12g}") if isinstance(v, float) else v
        for k, v in flat_options(config).items()
        if k not in NOT_SEARCHED
    }


def _run_trial(params: dict[str, Any], base: dict[str, Any], dataset: SequenceDataset) -> None:
    from ray import tune

    def report(epoch: int, valid: dict[str, float]) -> None:
        tune.report({EARLY_STOP_METRIC: valid[EARLY_STOP_METRIC], "hr@10": valid["hr@10"]})

    fit(trial_config(base, params), dataset, progress=False, on_eval=report)


def run_search(base: dict[str, Any], out_dir: Path, options: TuneOptions) -> TuneResult:
    """Search around the flat options `base` (`data`, `model`, ...); write the best
    configuration, a table of trials and a plot."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # One torch thread per trial: Ray runs one trial per reserved core.
    base = base | {"epochs": options.max_epochs, "threads": options.cpus_per_trial, "eval_every": 1}
    checked = train_config(**base)  # a bad option fails here, before Ray starts
    dataset = load_run_data(checked.loop_options())
    if options.address:
        ray.init(address=options.address, log_to_driver=options.progress)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(_run_trial, base=base, dataset=dataset),
            {"cpu": options.cpus_per_trial},
        )
        max_seconds = options.max_trial_minutes * 60
        scheduler = ASHAScheduler(
            time_attr="time_total_s",
            max_t=max_seconds,
            grace_period=min(options.grace_minutes * 60, max_seconds),
            reduction_factor=options.reduction_factor,
        )
        tuner = tune.Tuner(
            trainable,
            param_space=search_space(checked.model.arch),
            tune_config=tune.TuneConfig(
                metric=EARLY_STOP_METRIC,
                mode="max",
                scheduler=scheduler,
                num_samples=options.trials,
                search_alg=BasicVariantGenerator(random_state=options.seed),
            ),
            run_config=tune.RunConfig(
                name="ray", storage_path=str(out_dir), verbose=1 if options.progress else 0
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()

    space = sorted(search_space(checked.model.arch))
    trials, curves = [], []
    for result in results:
        frame = result.metrics_dataframe
        if result.error is not None or frame is None or frame.empty:
            trials.append({"trial": Path(result.path).name, "error": str(result.error)})
            continue
        best_row = frame.loc[frame[EARLY_STOP_METRIC].idxmax()]
        trials.append(
            {
                "trial": Path(result.path).name,
                **{name: result.config[name] for name in space},
                "valid_ndcg@10": float(best_row[EARLY_STOP_METRIC]),
                "valid_hr@10": float(best_row["hr@10"]),
                "best_epoch": int(best_row["training_iteration"]),
                "epochs": int(frame["training_iteration"].max()),
                "seconds": round(float(frame["time_total_s"].max()), 1),
                "error": "",
            }
        )
        curves.append((frame["time_total_s"].tolist(), frame[EARLY_STOP_METRIC].tolist()))
    finished = [t for t in trials if not t["error"]]
    if not finished:
        raise RuntimeError(f"every trial failed; first error: {trials[0]['error']}")
    best = max(finished, key=lambda t: t["valid_ndcg@10"])
    best_config = config_file_values(trial_config(base, {k: best[k] for k in space}))

    best_config_path = out_dir / BEST_CONFIG_FILE
    best_config_path.write_text(json.dumps(best_config, indent=2) + "\n")
    trials_path = _write_trials(out_dir / TRIALS_FILE, trials)
    plot_path = _plot(out_dir / PLOT_FILE, curves, checked.model.arch)
    return TuneResult(
        best_config, best["valid_ndcg@10"], trials, best_config_path, trials_path, plot_path
    )


def _write_trials(path: Path, trials: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(name for trial in trials for name in trial))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(sorted(trials, key=lambda t: -t.get("valid_ndcg@10", -1.0)))
    return path


def _plot(path: Path, curves: list[tuple[list[float], list[float]]], model: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for seconds, ndcg in curves:
        axes.plot(seconds, ndcg, linewidth=1, alpha=0.8)
    axes.set_xlabel("trial time (s)")
    axes.set_ylabel("validation NDCG@10")
    axes.set_title(f"ASHA search, {model}: {len(curves)} trials")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def read_config_file(path: Path) -> dict[str, Any]:
    """The values of a `best_config.json` (or a hand-written one) checked against TrainConfig."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: no such configuration file") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of training options")
    arch = values.get("model", "sasrec")
    if arch not in ENCODER_CONFIGS:
        raise ValueError(f"{path}: model must be one of {sorted(ENCODER_CONFIGS)}, got {arch!r}")
    defaults = (
        asdict(ENCODER_CONFIGS[arch]())
        | asdict(ObjectiveConfig())
        | TrainConfig(data="").loop_options()
    )
    for name, value in values.items():
        if name not in known_options(arch):
            raise ValueError(f"{path}: unknown training option {name!r} for {arch}")
        default = defaults.get(name)
        if default is None or name == "model":
            continue  # options whose default is None (fmt, s2i_share) take several types
        expected = type(default)
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if not ok or isinstance(value, bool) != (expected is bool):
            raise ValueError(f"{path}: option {name!r} must be {expected.__name__}, got {value!r}")
    return values
