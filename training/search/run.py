"""`intentrec search`: train the supernet, evolve architectures on validation with its weights,
retrain the best few from scratch and keep the one best on validation (Algorithm 1's outer
loop). Test is never evaluated here: `intentrec train --arch FILE` trains and tests the winner.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from training.architecture import Architecture, save_architecture, space_size
from training.config import TrainConfig, flat_options, train_config
from training.data import SequenceDataset, load_run_data
from training.evaluate import EvalOptions, evaluate_scorer, model_scorer
from training.search.evolution import EvolutionOptions, Scored, evolve
from training.search.supernet import train_supernet, use_path
from training.train import EARLY_STOP_METRIC, fit

ARCHITECTURE_FILE = "architecture.json"
BEST_CONFIG_FILE = "best_config.json"
LOG_FILE = "search_log.csv"
RETRAINED_FILE = "retrained.csv"
PLOT_FILE = "valid_ndcg_by_generation.png"
SUMMARY_FILE = "search.json"
HAND_DESIGNED = "hand-designed trunk"
# Not training options of the file `train --config` takes: where and how long the run happens
NOT_IN_CONFIG = ("data", "fmt", "k_core", "new_items", "threads", "device", "seed")


@dataclass(frozen=True)
class SearchOptions:
    depth: int = 6  # hidden layers W
    supernet_epochs: int = 60
    evolution: EvolutionOptions = field(default_factory=EvolutionOptions)
    retrain_top: int = 3
    # also retrain the hand-designed trunk with the same settings, as the reference the found
    # architecture has to beat on validation
    compare_hand_designed: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.depth < 1:
            raise ValueError(f"depth (--layers) must be >= 1, got {self.depth}")
        if self.supernet_epochs < 1:
            raise ValueError(f"supernet epochs must be >= 1, got {self.supernet_epochs}")
        if self.retrain_top < 1:
            raise ValueError(f"retrain_top must be >= 1, got {self.retrain_top}")


@dataclass(frozen=True)
class SearchResult:
    best: Architecture
    best_valid_ndcg: float
    space_size: int
    evaluated: int
    retrained: list[dict[str, Any]]
    seconds: dict[str, float]
    paths: dict[str, Path]


def search_architecture(
    base: dict[str, Any], out_dir: Path, options: SearchOptions, console: Console | None = None
) -> SearchResult:
    """Search around the flat training options `base` (`data`, `model`, ...)."""
    say = (console or Console(quiet=not options.progress)).print
    config = train_config(**base)
    dataset = load_run_data(config.loop_options())
    config = replace(config, model=replace(config.model, n_items=dataset.n_items, trunk=None))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = space_size(options.depth)
    say(f"search space: {size:,} architectures of {options.depth} hidden layers")

    started = time.perf_counter()
    split = dataset.split()
    trainable = [seq for seq in split.train if len(seq) >= 1]
    supernet = train_supernet(
        config, trainable, options.depth, options.supernet_epochs, progress=options.progress
    )
    supernet_seconds = time.perf_counter() - started

    eval_options = EvalOptions(max_len=config.model.max_len, history=config.history)
    scorer = model_scorer(supernet)

    def validation_ndcg(architecture: Architecture) -> float:
        use_path(supernet, architecture)
        full = evaluate_scorer(scorer, split.valid_inputs, split.valid_targets, eval_options)
        return float(full["full"][EARLY_STOP_METRIC])

    def report(generation: int, population: list[Scored]) -> None:
        say(
            f"generation {generation + 1}/{options.evolution.generations}: best "
            f"{population[0].score:.4f}, median {np.median([p.score for p in population]):.4f}"
        )

    started = time.perf_counter()
    scored = evolve(
        validation_ndcg,
        options.depth,
        options.evolution,
        np.random.default_rng(config.seed),
        on_generation=report,
    )
    evolution_seconds = time.perf_counter() - started
    say(f"evaluated {len(scored)} architectures with the supernet's weights")

    started = time.perf_counter()
    candidates: list[tuple[str, Architecture | None, float | None]] = [
        (s.architecture.describe(), s.architecture, s.score) for s in scored[: options.retrain_top]
    ]
    if options.compare_hand_designed:
        candidates.append((HAND_DESIGNED, None, None))
    finalists: list[tuple[Architecture | None, dict[str, Any]]] = []
    for name, architecture, supernet_score in candidates:
        run = replace(
            config,
            model=replace(config.model, trunk=architecture.to_dict() if architecture else None),
        )
        say(f"retraining from scratch: {name}")
        result = fit(run, dataset, progress=options.progress)
        row = {
            "architecture": name,
            "supernet_valid_ndcg@10": supernet_score,
            "valid_ndcg@10": result.best_valid[EARLY_STOP_METRIC],
            "valid_hr@10": result.best_valid["hr@10"],
            "best_epoch": result.best_epoch,
            "epochs": len(result.epoch_seconds),
            "seconds": round(sum(result.epoch_seconds), 1),
        }
        finalists.append((architecture, row))
    retrain_seconds = time.perf_counter() - started

    retrained = [row for _, row in finalists]
    best, winner = max(
        ((a, row) for a, row in finalists if a is not None),
        key=lambda pair: pair[1]["valid_ndcg@10"],
    )
    paths = _write_outputs(out_dir, config, best, scored, retrained, dataset)
    seconds = {
        "supernet": round(supernet_seconds, 1),
        "evolution": round(evolution_seconds, 1),
        "retrain": round(retrain_seconds, 1),
    }
    summary = {
        "best": best.to_dict(),
        "best_description": best.describe(),
        "best_valid_ndcg@10": winner["valid_ndcg@10"],
        "depth": options.depth,
        "space_size": size,
        "evaluated": len(scored),
        "supernet_epochs": options.supernet_epochs,
        "population": options.evolution.population,
        "generations": options.evolution.generations,
        "retrained": retrained,
        "seconds": seconds,
        "data": dataset.name,
        "settings": flat_options(config) | {"trunk": None},
    }
    paths["summary"] = out_dir / SUMMARY_FILE
    paths["summary"].write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return SearchResult(best, winner["valid_ndcg@10"], size, len(scored), retrained, seconds, paths)


def _write_outputs(
    out_dir: Path,
    config: TrainConfig,
    best: Architecture,
    scored: list[Scored],
    retrained: list[dict[str, Any]],
    dataset: SequenceDataset,
) -> dict[str, Path]:
    paths = {"architecture": save_architecture(best, out_dir / ARCHITECTURE_FILE)}
    settings = flat_options(replace(config, model=replace(config.model, trunk=best.to_dict())))
    settings = {k: v for k, v in settings.items() if k not in NOT_IN_CONFIG}
    paths["config"] = out_dir / BEST_CONFIG_FILE
    paths["config"].write_text(json.dumps(settings, indent=2) + "\n")
    paths["log"] = out_dir / LOG_FILE
    with paths["log"].open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["generation", "architecture", "valid_ndcg@10"])
        for s in sorted(scored, key=lambda s: (s.generation, -s.score)):
            writer.writerow([s.generation + 1, s.architecture.describe(), f"{s.score:.6f}"])
    paths["retrained"] = out_dir / RETRAINED_FILE
    with paths["retrained"].open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(retrained[0]))
        writer.writeheader()
        writer.writerows(retrained)
    paths["plot"] = _plot(out_dir / PLOT_FILE, scored, dataset.name)
    return paths


def _plot(path: Path, scored: list[Scored], data_name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generations = sorted({s.generation for s in scored})
    best_so_far, best = [], -1.0
    for generation in generations:
        best = max([best] + [s.score for s in scored if s.generation == generation])
        best_so_far.append(best)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.scatter(
        [s.generation + 1 for s in scored], [s.score for s in scored], s=12, alpha=0.6,
        label="architecture (supernet weights)",
    )  # fmt: skip
    axes.plot([g + 1 for g in generations], best_so_far, color="C3", label="best so far")
    axes.set_xlabel("generation")
    axes.set_ylabel("validation NDCG@10")
    axes.set_title(f"evolutionary search on {data_name}: {len(scored)} architectures")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
