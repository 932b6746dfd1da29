"""Offline evaluation on the leave-one-out split.

Protocols (all reported in metrics.json, each under its own key):
- full ranking over the whole catalog. `history="masked"` (default) removes the items of the
  user's input history from the ranking (the target itself is never removed), which is what
  `/recommend` does with `exclude_seen=true`; `history="kept"` leaves them in (RecBole's default).
  On ml-100k the two differ by almost 2x, so every figure states which one it is.
- 100 sampled negatives, uniform or by training popularity, never items of the user's history
  nor the target; the same negatives (fixed seed) for every model.
- cold start: the input history cut to its last `cold_start_items` items, full ranking, masked.

Beside accuracy, `beyond_accuracy_report` measures the top-10 lists themselves (coverage,
exposure Gini, popularity, novelty, diversity: training/beyond_accuracy.py) for the model and,
as the reference point, for the popularity ranking.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.beyond_accuracy import BEYOND_ACCURACY_CUTOFF, beyond_accuracy
from training.checkpoint import METRICS_FILE, load_model
from training.data import load_run_data
from training.metrics import ranking_metrics, target_ranks
from training.sequences import left_pad

# (B, L) left-padded int64 ids -> (B, N + 1) scores, column 0 = padding
Scorer = Callable[[np.ndarray], np.ndarray]

HISTORY_MODES = ("masked", "kept")
MAX_STALLED_ROUNDS = 20
NEGATIVE_SAMPLERS = ("uniform", "popularity")


@dataclass(frozen=True)
class EvalOptions:
    max_len: int
    history: str = "masked"
    negatives: int = 100
    negative_seed: int = 20261125
    cold_start_items: int = 5
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.history not in HISTORY_MODES:
            raise ValueError(f"history must be one of {HISTORY_MODES}, got {self.history!r}")


def model_scorer(model: torch.nn.Module) -> Scorer:
    device = next(model.parameters()).device

    def score(item_seq: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            scores = model.score_all(torch.from_numpy(item_seq).to(device))
            return scores.float().cpu().numpy()

    return score


def item_vectors(model: torch.nn.Module) -> np.ndarray:
    """(N + 1, D) the model's item embeddings on the CPU."""
    with torch.inference_mode():
        return model.item_embeddings().float().cpu().numpy()


def popularity_scorer(popularity: np.ndarray) -> Scorer:
    ranked = popularity.astype(np.float32)

    def score(item_seq: np.ndarray) -> np.ndarray:
        return np.broadcast_to(ranked, (item_seq.shape[0], ranked.shape[0])).copy()

    return score


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _mask_history(scores: np.ndarray, histories: Sequence[np.ndarray], targets: np.ndarray) -> None:
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets].copy()
    for row, history in enumerate(histories):
        scores[row, history] = -np.inf
    scores[rows, targets] = target_scores


def _sample_negatives(
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    count: int,
    weights: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """(U, count) negatives per user from 1..n_items, excluding the history and the target."""
    items = np.arange(1, n_items + 1)
    probs = None if weights is None else weights[1:] / weights[1:].sum()
    out = np.empty((len(targets), count), dtype=np.int64)
    for row, (history, target) in enumerate(zip(histories, targets, strict=True)):
        forbidden = set(history.tolist()) | {int(target)}
        available = n_items - len(forbidden)
        if available < count:
            raise ValueError(
                f"user row {row}: only {available} items left to sample {count} negatives"
            )
        chosen: list[int] = []
        seen: set[int] = set()
        user_probs = probs
        stalled_rounds = 0
        while len(chosen) < count:
            before = len(chosen)
            draw = rng.choice(items, size=2 * count, p=user_probs)
            for item in draw.tolist():
                if item not in forbidden and item not in seen:
                    seen.add(item)
                    chosen.append(item)
                    if len(chosen) == count:
                        break
            stalled_rounds = stalled_rounds + 1 if len(chosen) == before else 0
            if user_probs is not None and stalled_rounds >= MAX_STALLED_ROUNDS:
                # too few allowed items carry popularity weight: complete the set uniformly
                user_probs = None
        out[row] = chosen
    return out


def evaluate_scorer(
    scorer: Scorer,
    inputs: Sequence[np.ndarray],
    targets: np.ndarray,
    options: EvalOptions,
    popularity: np.ndarray | None = None,
    protocols: tuple[str, ...] = ("full",),
) -> dict[str, dict[str, float]]:
    """Run the requested protocols over one score pass.

    protocols: "full" (history per options.history), "full_history_kept", "sampled_uniform",
    "sampled_popularity" (the last two need `popularity` for the catalog size / weights).
    """
    targets = np.asarray(targets, dtype=np.int64)
    padded = left_pad(inputs, options.max_len)
    ranks: dict[str, list[np.ndarray]] = {name: [] for name in protocols}
    negatives: dict[str, np.ndarray] = {}
    n_items: int | None = None
    for name in protocols:
        if name.startswith("sampled_"):
            if popularity is None:
                raise ValueError(f"protocol {name} needs the item popularity")
            n_items = len(popularity) - 1
            weights = popularity.astype(np.float64) if name == "sampled_popularity" else None
            rng = np.random.default_rng(options.negative_seed)
            negatives[name] = _sample_negatives(
                inputs, targets, n_items, options.negatives, weights, rng
            )

    for batch in _batches(len(targets), options.batch_size):
        raw = scorer(padded[batch])
        raw[:, 0] = -np.inf
        batch_targets = targets[batch]
        rows = np.arange(len(batch_targets))
        for name in protocols:
            if name.startswith("sampled_"):
                candidates = negatives[name][batch]
                target_scores = raw[rows, batch_targets]
                ranks[name].append(
                    target_ranks(np.take_along_axis(raw, candidates, axis=1), target_scores)
                )
                continue
            scores = raw.copy()
            mask = name == "full" and options.history == "masked"
            if mask:
                _mask_history(scores, inputs[batch], batch_targets)
            ranks[name].append(target_ranks(scores, scores[rows, batch_targets]))
    return {name: ranking_metrics(np.concatenate(parts)) for name, parts in ranks.items()}


def recommended_lists(
    scorer: Scorer, inputs: Sequence[np.ndarray], options: EvalOptions, k: int
) -> np.ndarray:
    """(U, k) item ids each user would be shown: the top k with the input history masked, as
    `/recommend` answers with `exclude_seen=true`."""
    padded = left_pad(inputs, options.max_len)
    lists = np.empty((len(inputs), k), dtype=np.int64)
    for batch in _batches(len(inputs), options.batch_size):
        scores = scorer(padded[batch])
        scores[:, 0] = -np.inf
        for row, history in enumerate(inputs[batch]):
            scores[row, history] = -np.inf
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        lists[batch] = np.take_along_axis(top, order, axis=1)
    return lists


def beyond_accuracy_report(
    scorer: Scorer,
    test_inputs: Sequence[np.ndarray],
    popularity: np.ndarray,
    item_vectors: np.ndarray,
    options: EvalOptions,
    k: int = BEYOND_ACCURACY_CUTOFF,
) -> dict[str, Any]:
    """Beyond-accuracy figures of the model's test top-k lists and of the popularity ranking's
    (diversity of both measured with the model's item embeddings)."""
    figures: dict[str, Any] = {"k": k}
    for name, ranker in (("model", scorer), ("popularity", popularity_scorer(popularity))):
        lists = recommended_lists(ranker, test_inputs, options, k)
        figures[name] = beyond_accuracy(lists, popularity, len(test_inputs), item_vectors)
    return figures


def evaluate_test(
    scorer: Scorer,
    test_inputs: Sequence[np.ndarray],
    test_targets: np.ndarray,
    popularity: np.ndarray,
    options: EvalOptions,
) -> dict[str, dict[str, float]]:
    """Every test protocol of metrics.json["test"]."""
    results = evaluate_scorer(
        scorer,
        test_inputs,
        test_targets,
        options,
        popularity=popularity,
        protocols=("full", "full_history_kept", "sampled_uniform", "sampled_popularity"),
    )
    cold_inputs = [seq[-options.cold_start_items :] for seq in test_inputs]
    cold_options = EvalOptions(**{**options.__dict__, "history": "masked"})
    cold = evaluate_scorer(scorer, cold_inputs, test_targets, cold_options)["full"]
    suffix = f"_{options.negatives}"
    return {
        "full": results["full"],
        "full_history_kept": results["full_history_kept"],
        f"sampled_uniform{suffix}": results["sampled_uniform"],
        f"sampled_popularity{suffix}": results["sampled_popularity"],
        f"cold_start_last{options.cold_start_items}": cold,
    }


def evaluate_run(run_dir: Path, history: str | None = None) -> dict[str, Any]:
    """Re-evaluate a run's checkpoint on its test split and update its metrics.json."""
    model, checkpoint = load_model(Path(run_dir))
    train_config = checkpoint.train_config
    dataset = load_run_data(train_config)
    if dataset.source_hash != checkpoint.data_info["source_hash"]:
        raise ValueError(
            f"{train_config['data']} changed since training (hash {dataset.source_hash[:12]} != "
            f"{checkpoint.data_info['source_hash'][:12]}): "
            "evaluate on the data the model was trained on"
        )
    split = dataset.split()
    options = EvalOptions(
        max_len=checkpoint.model_config["max_len"], history=history or train_config["history"]
    )
    scorer, popularity = model_scorer(model), dataset.popularity()
    test = evaluate_test(scorer, split.test_inputs, split.test_targets, popularity, options)
    beyond = beyond_accuracy_report(
        scorer, split.test_inputs, popularity, item_vectors(model), options
    )
    metrics_path = Path(run_dir) / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics |= {"test": test, "history": options.history, "beyond_accuracy": beyond}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
