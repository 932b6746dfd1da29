"""Training benchmarks: several seeds per variant, mean +- std of the offline metrics.

Presets:
- `foundation`: SASRec on the given data (Foundation issue targets).
- `ablation`: SASRec, DisenSeq S2I only, DisenSeq S2I+S2S (AutoDisenSeq issue).
- `sweep`: DisenSeq with K in {1, 2, 8} and lambda in {0.1, 0.6} (K = 4, lambda = 0.3 is the
  `ablation` row). Hyper-parameters other than the swept one stay at their defaults.
- `scale`: one run on a synthetic long-tail data set of 1M actions (memory and time per epoch).
"""

from __future__ import annotations

import resource
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.checkpoint import CHECKPOINT_FILE
from training.evaluate import evaluate_run
from training.train import TrainConfig, run_training

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
    "ablation": [
        Variant("sasrec", {"model": "sasrec"}),
        Variant("disen K=4 S2I only", DISEN | {"intents": 4, "s2i_only": True}),
        Variant("disen K=4 S2I+S2S lambda=0.3", DISEN | {"intents": 4}),
    ],
    "sweep": [
        Variant("disen K=1 S2I+S2S", DISEN | {"intents": 1}),
        Variant("disen K=2 S2I+S2S", DISEN | {"intents": 2}),
        Variant("disen K=8 S2I+S2S", DISEN | {"intents": 8}),
        Variant("disen K=4 lambda=0.1", DISEN | {"intents": 4, "s2s_lambda": 0.1}),
        Variant("disen K=4 lambda=0.6", DISEN | {"intents": 4, "s2s_lambda": 0.6}),
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
    return summary


def run_preset(
    variants: list[Variant],
    seeds: list[int],
    base: dict[str, Any],
    out_root: Path,
    progress: bool = True,
    reuse: bool = False,
) -> dict[str, Any]:
    """Train every (variant, seed); with `reuse`, a run already on disk is re-evaluated on the
    test split with the current evaluation code instead of trained again."""
    results: dict[str, Any] = {}
    for variant in variants:
        runs = []
        for seed in seeds:
            config = TrainConfig(**(base | variant.overrides | {"seed": seed}))
            run_dir = out_root / variant.name.replace(" ", "_").replace("=", "") / f"seed{seed}"
            if reuse and (run_dir / CHECKPOINT_FILE).exists():
                runs.append(evaluate_run(run_dir))
                continue
            runs.append(run_training(config, run_dir, progress=progress).metrics)
        results[variant.name] = summarize(runs)
    return results


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
