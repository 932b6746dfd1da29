"""Offline evaluation of the refine stage (`intentrec evaluate-refine`), on validation users and
on test users separately.

For each sampled user: the bundle's encoder ranks the whole catalog (history items masked, as
/recommend does with exclude_seen), its top N are refined by the LLM through the same Refiner
the service uses, and HR/NDCG@10/@20 of the held-out item (the second-last action on
validation, the last on test) are compared for: the encoder alone, refining N-fixed_top (the
served setting), refining all N (the seed paper's Table 4 variant) and a random shuffle of
positions fixed_top+1..N (a floor). Refine's lift (refined minus encoder, per user) comes with a
paired-bootstrap 95 % interval, overall and by history length; `refine=auto` goes by the
validation interval (serving/refine/lift.py), test is reported beside it.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from serving.refine.contract import Candidate, RefineOutcome
from serving.refine.lift import paired_bootstrap
from serving.refine.settings import RefineSettings

KS = (10, 20)
BEYOND_K = 10  # beyond-accuracy figures are of the top 10, as `intentrec evaluate` reports them
SPLITS = ("valid", "test")
# Lift by history length: users with this many items or fewer, and the others
SHORT_HISTORY = 5


@dataclass(frozen=True)
class EvalConfig:
    bundle: Path
    data: Path
    users: int = 200
    seed: int = 0
    per_call_ms: float = 120_000.0  # the budget of one refine call: no deadline offline
    refine_all: bool = True


@dataclass
class VariantResult:
    """Per-user HR and NDCG at each k (so lifts can be paired), and each user's top list."""

    per_user: dict[str, list[float]] = field(
        default_factory=lambda: {f"{m}@{k}": [] for k in KS for m in ("hr", "ndcg")}
    )
    top_lists: list[list[int]] = field(default_factory=list)  # first BEYOND_K of each ranking

    def add(self, ranked: Sequence[int], target: int) -> None:
        self.top_lists.append(list(ranked[:BEYOND_K]))
        rank = list(ranked).index(target) if target in ranked else None
        for k in KS:
            hit = rank is not None and rank < k
            self.per_user[f"hr@{k}"].append(1.0 if hit else 0.0)
            self.per_user[f"ndcg@{k}"].append(1.0 / math.log2(rank + 2) if hit else 0.0)

    def means(self) -> dict[str, float]:
        return {name: float(np.mean(v)) if v else 0.0 for name, v in self.per_user.items()}


def lift_report(
    refined: VariantResult, encoder: VariantResult, history_lengths: Sequence[int], seed: int
) -> dict[str, Any]:
    """Refine's paired lift in NDCG@10 and HR@10 with 95 % intervals: all users, and users with
    at most SHORT_HISTORY history items against the others (a group with no user is left out)."""
    lengths = np.asarray(history_lengths)
    groups = {
        "all": np.ones(len(lengths), dtype=bool),
        f"history<={SHORT_HISTORY}": lengths <= SHORT_HISTORY,
        f"history>{SHORT_HISTORY}": lengths > SHORT_HISTORY,
    }
    report: dict[str, Any] = {}
    for group, members in groups.items():
        if not members.any():
            continue
        report[group] = {
            metric: paired_bootstrap(
                np.asarray(refined.per_user[metric])[members],
                np.asarray(encoder.per_user[metric])[members],
                seed=seed,
            ).as_dict()
            for metric in ("ndcg@10", "hr@10")
        }
    return report


@dataclass
class CallStats:
    latencies_ms: list[float] = field(default_factory=list)  # calls answered by the LLM
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: RefineOutcome) -> None:
        if outcome.degraded:
            self.outcomes[outcome.degraded[0]] += 1
        elif outcome.from_cache:
            self.outcomes["cache_hit"] += 1
        else:
            self.outcomes["refined"] += 1
            self.latencies_ms.append(outcome.elapsed_ms)

    def summary(self, repaired: int) -> dict[str, float]:
        calls = sum(self.outcomes.values())
        lat = np.asarray(self.latencies_ms or [math.nan])
        return {
            "calls": calls,
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p90_ms": float(np.percentile(lat, 90)),
            "latency_p99_ms": float(np.percentile(lat, 99)),
            "latency_max_ms": float(np.max(lat)),
            "invalid_share": self.outcomes["refine_invalid_output"] / max(calls, 1),
            "repaired_share": repaired / max(calls, 1),
            "error_share": (calls - self.outcomes["refined"] - self.outcomes["cache_hit"]
                            - self.outcomes["refine_invalid_output"]) / max(calls, 1),
            "cache_hit_rate": self.outcomes["cache_hit"] / max(calls, 1),
        }  # fmt: skip


def beyond_accuracy_by_variant(
    variants: dict[str, VariantResult],
    popularity: np.ndarray,
    n_users: int,
    item_vectors: np.ndarray,
) -> dict[str, Any]:
    """Coverage, exposure Gini, popularity, novelty and diversity of each variant's top 10, and
    refine's effect (refined minus encoder) on each, its sign kept."""
    # offline only, like load_test_users: the numpy-only figures live with training's evaluation
    from training.beyond_accuracy import beyond_accuracy

    figures = {
        name: beyond_accuracy(np.asarray(v.top_lists), popularity, n_users, item_vectors)
        for name, v in variants.items()
    }
    effect = {k: figures["refined"][k] - figures["encoder"][k] for k in figures["encoder"]}
    return {"k": BEYOND_K, **figures, "refine_effect": effect}


def encoder_top(
    session: Any, item_vectors: np.ndarray, rows: np.ndarray, histories: list[np.ndarray], n: int
) -> np.ndarray:
    """(U, max_len) left-padded histories -> (U, n) internal ids by max-over-intents score, with
    padding and history items masked."""
    vectors = session.run(None, {session.get_inputs()[0].name: rows})[0]  # (U, K, D)
    scores = np.einsum("ukd,nd->ukn", vectors, item_vectors).max(axis=1)  # (U, N + 1)
    scores[:, 0] = -np.inf
    for u, seen in enumerate(histories):
        scores[u, seen] = -np.inf
    top = np.argpartition(-scores, n, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _left_pad(seq: np.ndarray, max_len: int) -> np.ndarray:
    row = np.zeros(max_len, dtype=np.int64)
    tail = seq[-max_len:]
    if len(tail):
        row[-len(tail) :] = tail
    return row


def load_eval_users(
    data: Path, external_ids: list[str], users: int, seed: int
) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """For each of SPLITS, the histories and targets of `users` sampled users, in the bundle's
    internal ids (the data set is read once for both)."""
    from training.data import load_dataset  # offline only: the CLI command may use training

    dataset = load_dataset(data)
    split = dataset.split()
    bundle_id = {ext: i for i, ext in enumerate(external_ids) if i > 0}
    to_bundle = np.asarray([bundle_id.get(ext, -1) for ext in dataset.item_ids], dtype=np.int64)
    to_bundle[0] = 0
    sources = {
        "valid": (split.valid_inputs, split.valid_targets),
        "test": (split.test_inputs, split.test_targets),
    }
    by_split = {}
    for name in SPLITS:
        inputs, all_targets = sources[name]
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(inputs), min(users, len(inputs)), False))
        histories, targets = [], []
        for u in picked:
            seq = to_bundle[inputs[u]]
            target = int(to_bundle[all_targets[u]])
            if target <= 0:
                continue  # an item the bundle does not know cannot be ranked
            histories.append(seq[seq > 0])
            targets.append(target)
        by_split[name] = (histories, targets)
    return by_split


async def evaluate_refine(
    config: EvalConfig,
    settings: RefineSettings,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    import onnxruntime as ort
    import redis.asyncio as aioredis

    from models_export.bundle import load_catalog, load_item_vectors, load_manifest, resolve_bundle
    from serving.clients.embedded_redis import EmbeddedRedis
    from serving.refine import build_refiner

    bundle_dir = resolve_bundle(config.bundle)
    manifest = load_manifest(bundle_dir)
    catalog = load_catalog(bundle_dir, manifest.model.n_items)
    items = load_item_vectors(bundle_dir, manifest.model)
    session = ort.InferenceSession(
        str(bundle_dir / "encoder.onnx"), providers=["CPUExecutionProvider"]
    )
    users_by_split = load_eval_users(config.data, catalog.external_ids, config.users, config.seed)
    total = sum(len(histories) for histories, _ in users_by_split.values())
    n = settings.refine_candidates
    fixed = settings.refine_fixed_top

    def candidate(i: int, score: float = 0.0) -> Candidate:
        return Candidate(i, catalog.external_ids[i], catalog.titles[i], catalog.texts[i], score)

    results = {
        split: {name: VariantResult() for name in ("encoder", "refined", "refined_all", "shuffled")}
        for split in SPLITS
    }
    stats = {"refined": CallStats(), "refined_all": CallStats()}
    rng = np.random.default_rng(config.seed + 1)
    done = 0
    with tempfile.TemporaryDirectory(prefix="intentrec-eval-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp), fsync="everysec")
        redis = aioredis.from_url(await asyncio.to_thread(redis_server.start))
        refiners = {
            "refined": build_refiner(settings, redis),
            "refined_all": build_refiner(
                settings.model_copy(update={"refine_fixed_top": 0}), redis
            ) if config.refine_all else None,
        }  # fmt: skip
        if refiners["refined"] is None:
            raise ValueError("no LLM configured: pass --llm URL or set INTENTREC_LLM_BASE_URL")
        started = time.perf_counter()
        try:
            for split, (histories, targets) in users_by_split.items():
                variants = results[split]
                rows = np.stack([_left_pad(h, manifest.model.max_len) for h in histories])
                tops = encoder_top(session, items, rows, histories, n)
                for u, (history, target) in enumerate(zip(histories, targets, strict=True)):
                    candidates = [candidate(int(i)) for i in tops[u]]
                    past = [candidate(int(i)) for i in history]
                    encoder_ids = [c.item_id for c in candidates]
                    variants["encoder"].add(encoder_ids, target)
                    tail = encoder_ids[fixed:]
                    variants["shuffled"].add(
                        encoder_ids[:fixed] + [tail[i] for i in rng.permutation(len(tail))], target
                    )
                    for name, refiner in refiners.items():
                        if refiner is None:
                            continue
                        outcome = await refiner.refine(
                            model_version=manifest.version,
                            history=past,
                            candidates=candidates,
                            remaining_ms=config.per_call_ms,
                        )
                        stats[name].add(outcome)
                        variants[name].add([c.item_id for c in outcome.candidates], target)
                    done += 1
                    if progress:
                        progress(done, total)
        finally:
            repaired = {k: r.counters["repaired"] if r else 0 for k, r in refiners.items()}
            for r in refiners.values():
                if r is not None:
                    await r.aclose()
            await redis.aclose()
            await asyncio.to_thread(redis_server.stop)
    shown = [name for name in results["test"] if config.refine_all or name != "refined_all"]
    by_split = {}
    for split, variants in results.items():
        histories, _ = users_by_split[split]
        by_split[split] = {
            "users": len(histories),
            "metrics": {name: variants[name].means() for name in shown},
            "lift": lift_report(
                variants["refined"], variants["encoder"], [len(h) for h in histories], config.seed
            ),
        }
    test_users = len(users_by_split["test"][0])
    beyond = beyond_accuracy_by_variant(
        {name: results["test"][name] for name in shown},
        catalog.popularity,
        int(manifest.data.get("users", test_users)),
        items,
    )
    valid_lift = by_split["valid"]["lift"]["all"]["ndcg@10"]
    return {
        "bundle": manifest.version,
        "arch": manifest.model.arch,
        "llm_model": settings.llm_model,
        "llm_base_url": settings.llm_base_url,
        "blend": settings.refine_blend,
        "fixed_top": fixed,
        "candidates": n,
        "users": config.users,
        "seed": config.seed,
        "protocol": "full ranking, history masked, leave-one-out validation and test items",
        "splits": by_split,
        # what `refine=auto` goes by: the validation lift and its interval
        "lift_ndcg10": valid_lift["mean"],
        "ci95": valid_lift["ci95"],
        "test_lift_ndcg10": by_split["test"]["lift"]["all"]["ndcg@10"]["mean"],
        "test_ci95": by_split["test"]["lift"]["all"]["ndcg@10"]["ci95"],
        "beyond_accuracy": beyond,
        "calls": {k: stats[k].summary(repaired[k]) for k in stats if refiners.get(k) is not None},
        "seconds": time.perf_counter() - started,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
