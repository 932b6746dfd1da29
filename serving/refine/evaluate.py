"""Offline evaluation of the refine stage on test users (`intentrec evaluate-refine`).

For each sampled test user: the bundle's encoder ranks the whole catalog (history items masked,
as /recommend does with exclude_seen), its top N are refined by the LLM through the same Refiner
the service uses, and HR/NDCG@10/@20 of the held-out last item are compared for: the encoder
alone, refining N-fixed_top (the served setting), refining all N (the seed paper's Table 4
variant) and a random shuffle of positions fixed_top+1..N (a floor).
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

from serving.refine.contract import Candidate, RefineMode, RefineOutcome
from serving.refine.settings import RefineSettings

KS = (10, 20)
BEYOND_K = 10  # beyond-accuracy figures are of the top 10, as `intentrec evaluate` reports them


@dataclass(frozen=True)
class EvalConfig:
    bundle: Path
    data: Path
    users: int = 200
    mode: RefineMode = RefineMode.SCORE
    seed: int = 0
    per_call_ms: float = 120_000.0  # the budget of one refine call: no deadline offline
    refine_all: bool = True


@dataclass
class VariantResult:
    hits: dict[int, float] = field(default_factory=lambda: dict.fromkeys(KS, 0.0))
    ndcg: dict[int, float] = field(default_factory=lambda: dict.fromkeys(KS, 0.0))
    top_lists: list[list[int]] = field(default_factory=list)  # first BEYOND_K of each ranking

    def add(self, ranked: Sequence[int], target: int) -> None:
        self.top_lists.append(list(ranked[:BEYOND_K]))
        if target in ranked:
            rank = list(ranked).index(target)
            for k in KS:
                if rank < k:
                    self.hits[k] += 1.0
                    self.ndcg[k] += 1.0 / math.log2(rank + 2)

    def means(self, n: int) -> dict[str, float]:
        out = {}
        for k in KS:
            out[f"hr@{k}"] = self.hits[k] / max(n, 1)
            out[f"ndcg@{k}"] = self.ndcg[k] / max(n, 1)
        return out


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


def load_test_users(
    data: Path, external_ids: list[str], users: int, seed: int
) -> tuple[list[np.ndarray], list[int]]:
    """Histories and targets of `users` sampled test users, in the bundle's internal ids."""
    from training.data import load_dataset  # offline only: the CLI command may use training

    dataset = load_dataset(data)
    split = dataset.split()
    bundle_id = {ext: i for i, ext in enumerate(external_ids) if i > 0}
    to_bundle = np.asarray([bundle_id.get(ext, -1) for ext in dataset.item_ids], dtype=np.int64)
    to_bundle[0] = 0
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(split.test_inputs), min(users, len(split.test_inputs)), False))
    histories, targets = [], []
    for u in picked:
        seq = to_bundle[split.test_inputs[u]]
        target = int(to_bundle[split.test_targets[u]])
        if target <= 0:
            continue  # an item the bundle does not know cannot be ranked
        histories.append(seq[seq > 0])
        targets.append(target)
    return histories, targets


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
    histories, targets = load_test_users(
        config.data, catalog.external_ids, config.users, config.seed
    )
    n = settings.refine_candidates
    fixed = settings.refine_fixed_top
    rows = np.stack([_left_pad(h, manifest.model.max_len) for h in histories])
    tops = encoder_top(session, items, rows, histories, n)

    def candidate(i: int, score: float = 0.0) -> Candidate:
        return Candidate(i, catalog.external_ids[i], catalog.titles[i], catalog.texts[i], score)

    variants = {name: VariantResult() for name in ("encoder", "refined", "refined_all", "shuffled")}
    stats = {"refined": CallStats(), "refined_all": CallStats()}
    rng = np.random.default_rng(config.seed + 1)
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
                        mode=config.mode,
                    )
                    stats[name].add(outcome)
                    variants[name].add([c.item_id for c in outcome.candidates], target)
                if progress:
                    progress(u + 1, len(histories))
        finally:
            repaired = {k: r.counters["repaired"] if r else 0 for k, r in refiners.items()}
            for r in refiners.values():
                if r is not None:
                    await r.aclose()
            await redis.aclose()
            await asyncio.to_thread(redis_server.stop)
    users = len(histories)
    metrics = {name: v.means(users) for name, v in variants.items()}
    if not config.refine_all:
        metrics.pop("refined_all")
    beyond = beyond_accuracy_by_variant(
        {name: variants[name] for name in metrics},
        catalog.popularity,
        int(manifest.data.get("users", users)),
        items,
    )
    return {
        "bundle": manifest.version,
        "arch": manifest.model.arch,
        "llm_model": settings.llm_model,
        "llm_base_url": settings.llm_base_url,
        "mode": config.mode.value,
        "blend": settings.refine_blend,
        "fixed_top": fixed,
        "candidates": n,
        "users": users,
        "seed": config.seed,
        "protocol": "full ranking, history masked, leave-one-out test item",
        "metrics": metrics,
        "lift_ndcg10": metrics["refined"]["ndcg@10"] - metrics["encoder"]["ndcg@10"],
        "beyond_accuracy": beyond,
        "calls": {k: stats[k].summary(repaired[k]) for k in stats if refiners.get(k) is not None},
        "seconds": time.perf_counter() - started,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
