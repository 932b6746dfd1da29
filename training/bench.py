"""Training benchmarks: several seeds per variant, mean +- std of the offline metrics.

Presets:
- `foundation`: SASRec on the given data (Foundation issue targets).
- `disen`: DisenSeq alone, its twin for settings given with `--set`.
- `defaults`: SASRec and DisenSeq at their defaults (the tuned ones of training/config.py).
- `intents`: DisenSeq with K in {1, 2, 4}, S2I only and S2I+S2S, the rest at its defaults.
- `ablation`: SASRec, DisenSeq S2I only, DisenSeq S2I+S2S (AutoDisenSeq issue).
- `sweep`: DisenSeq with K in {1, 2, 8} and lambda in {0.1, 0.3} (K = 4, lambda = 0.6, the
  defaults, is the `ablation` row). Hyper-parameters other than the swept one stay at their
  defaults.
- `tune`: DisenSeq K = 4, the S2S weight in {0.01, 0.03, 0.1, 0.3, 1} crossed with lambda in
  {0.1, 0.3, 0.6}; pick by `valid/ndcg@10`, never by test.
- `scale`: one run on a synthetic long-tail data set of 1M actions (memory and time per epoch).

With `jobs` > 1 the (variant, seed) runs train in that many worker processes at once (a GPU is
shared by them; CPU threads are split between them unless `threads` is set).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from training.checkpoint import CHECKPOINT_FILE
from training.config import TrainConfig, train_config
from training.evaluate import evaluate_run
from training.train import run_training

# (protocol in metrics.json["test"], metric) pairs summarised per variant
REPORTED = (
    ("full", "ndcg@10"),
    ("full", "hr@10"),
    ("full_history_kept", "ndcg@10"),
    ("full_history_kept", "hr@10"),
    ("sampled_popularity_100", "ndcg@10"),
    ("sampled_popularity_100", "hr@10"),
    ("cold_start_last5", "ndcg@10"),
    ("cold_start_last5", "hr@10"),
)


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


DISEN = {"model": "disen"}
PRESETS: dict[str, list[Variant]] = {
    "foundation": [Variant("sasrec", {"model": "sasrec"})],
    "disen": [Variant("disen", DISEN)],
    "defaults": [Variant("sasrec", {"model": "sasrec"}), Variant("disen", DISEN)],
    "intents": [
        Variant(f"disen K={k} {objective}", DISEN | {"intents": k, "s2i_only": s2i_only})
        for k in (1, 2, 4)
        for objective, s2i_only in (("S2I only", True), ("S2I+S2S", False))
    ],
    "ablation": [
        Variant("sasrec", {"model": "sasrec"}),
        Variant("disen K=4 S2I only", DISEN | {"intents": 4, "s2i_only": True}),
        Variant("disen K=4 S2I+S2S", DISEN | {"intents": 4}),
    ],
    "sweep": [
        Variant("disen K=1 S2I+S2S", DISEN | {"intents": 1}),
        Variant("disen K=2 S2I+S2S", DISEN | {"intents": 2}),
        Variant("disen K=8 S2I+S2S", DISEN | {"intents": 8}),
        Variant("disen K=4 lambda=0.1", DISEN | {"intents": 4, "s2s_lambda": 0.1}),
        Variant("disen K=4 lambda=0.3", DISEN | {"intents": 4, "s2s_lambda": 0.3}),
    ],
    "tune": [
        Variant(
            f"disen K=4 weight={weight} lambda={lam}",
            DISEN | {"intents": 4, "s2s_weight": weight, "s2s_lambda": lam},
        )
        for weight in (0.01, 0.03, 0.1, 0.3, 1.0)
        for lam in (0.1, 0.3, 0.6)
    ],
}


def mean_std(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for protocol, metric in REPORTED:
        summary[f"{protocol}/{metric}"] = mean_std([r["test"][protocol][metric] for r in runs])
    summary["valid/ndcg@10"] = mean_std([r["valid"]["ndcg@10"] for r in runs])
    summary["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
    summary["seconds_per_epoch"] = mean_std([r["seconds_per_epoch"] for r in runs])
    summary["per_seed_test_ndcg@10"] = [r["test"]["full"]["ndcg@10"] for r in runs]
    summary["device"] = sorted({str(r.get("device", "unknown")) for r in runs})  # torch's, as run
    return summary


def run_dir_of(out_root: Path, variant: Variant, seed: int) -> Path:
    return out_root / variant.name.replace(" ", "_").replace("=", "") / f"seed{seed}"


def _train_metrics(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """One run in a worker process (top level so that a spawned process can import it)."""
    return run_training(config, run_dir, progress=False).metrics


def run_preset(
    variants: list[Variant],
    seeds: list[int],
    base: dict[str, Any],
    out_root: Path,
    progress: bool = True,
    reuse: bool = False,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train every (variant, seed); with `reuse`, a run already on disk is re-evaluated on the
    test split with the current evaluation code instead of trained again."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    pending: dict[tuple[str, int], tuple[TrainConfig, Path]] = {}
    metrics: dict[tuple[str, int], dict[str, Any]] = {}
    for variant in variants:
        for seed in seeds:
            run_dir = run_dir_of(out_root, variant, seed)
            if reuse and (run_dir / CHECKPOINT_FILE).exists():
                metrics[variant.name, seed] = evaluate_run(run_dir)
            else:
                config = train_config(**(base | variant.overrides | {"seed": seed}))
                pending[variant.name, seed] = (config, run_dir)
    if jobs == 1:
        for key, (config, run_dir) in pending.items():
            metrics[key] = run_training(config, run_dir, progress=progress).metrics
    else:
        metrics |= _train_in_parallel(pending, jobs, progress, explicit_threads="threads" in base)
    return {
        variant.name: summarize([metrics[variant.name, seed] for seed in seeds])
        for variant in variants
    }


def _train_in_parallel(
    pending: dict[tuple[str, int], tuple[TrainConfig, Path]],
    jobs: int,
    progress: bool,
    explicit_threads: bool,
) -> dict[tuple[str, int], dict[str, Any]]:
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn, not fork: a forked child cannot initialise CUDA once the parent has
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {}
        for key, (config, run_dir) in pending.items():
            if not explicit_threads:
                config = replace(config, threads=threads)
            futures[pool.submit(_train_metrics, config, run_dir)] = key
        results = {}
        for future in tqdm(
            as_completed(futures), total=len(futures), desc="runs", disable=not progress
        ):
            results[futures[future]] = future.result()
    return results


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
