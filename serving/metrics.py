"""Prometheus metrics, one registry per app (tests build several apps in one process).

With several server processes (`intentrec serve --workers N`) each would count only its own
requests, so the serve command points PROMETHEUS_MULTIPROC_DIR at a shared directory: then every
worker writes its values to files there and /metrics, whichever worker answers, reports the sum.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# prometheus_client's own switch, read when it is imported: it must be in the environment before
# a worker process imports prometheus_client.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.125, 0.25, 0.5, 1, 2.5)


def multiprocess_dir() -> Path | None:
    """The directory the worker processes share their metrics through; None: single process."""
    value = os.environ.get(MULTIPROC_DIR_ENV)
    return Path(value) if value else None


class Metrics:
    def __init__(self) -> None:
        self.multiprocess_dir = multiprocess_dir()
        self.registry = CollectorRegistry()
        r: CollectorRegistry | None = self.registry
        if self.multiprocess_dir is not None:
            # The registry renders what all workers wrote; the metrics themselves stay out of it,
            # or this worker's values would appear twice.
            MultiProcessCollector(self.registry, path=str(self.multiprocess_dir))
            r = None
        self._bundle_version: str | None = None
        self._children: dict[tuple, Any] = {}
        self.stage_latency = Histogram(
            "intentrec_stage_latency_seconds",
            "Time spent per recommend stage (`total` is the whole request).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "intentrec_requests_total",
            "Requests by endpoint and outcome (ok, degraded, client_error, unavailable).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.degraded = Counter(
            "intentrec_degraded_total", "Degraded answers by reason.", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "intentrec_encoder_batch_size",
            "Requests grouped into one encoder call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        # Across workers: 1 for every version some live worker serves (they reload one by one).
        self.device_info = Gauge(
            "intentrec_device_info",
            "Where the served model runs (value 1): the encoder's ONNX Runtime provider and "
            "the FAISS index, as loaded.",
            ["encoder", "index"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._device: tuple[str, str] | None = None
        self.bundle_info = Gauge(
            "intentrec_bundle_info",
            "The served bundle (value 1).",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.bundle_reloads = Counter(
            "intentrec_bundle_reloads_total", "Bundle reloads by outcome.", ["outcome"], registry=r
        )
        self.redis_errors = Counter(
            "intentrec_redis_errors_total",
            "Failed history store operations.",
            ["operation"],
            registry=r,
        )
        self.refine = Counter(
            "intentrec_refine_total",
            "Refine stage calls by outcome (refined, cached, or the degraded reason).",
            ["outcome"],
            registry=r,
        )
        self.history_cache = Counter(
            "intentrec_history_cache_total",
            "History reads answered by the local cache (hit) or not (miss, expired), and entries "
            "evicted because Redis announced a write (invalidated).",
            ["outcome"],
            registry=r,
        )
        self.history_cache_active = Gauge(
            "intentrec_history_cache_active",
            "1 while the cache's invalidation connection is subscribed (summed over workers).",
            registry=r,
            multiprocess_mode="livesum",
        )

    def set_bundle(self, version: str, encoder: str, index: str) -> None:
        if self.multiprocess_dir is None:
            self.bundle_info.clear()
            self.device_info.clear()
        else:
            # clear() does not reach the shared files: what was replaced drops to 0 instead.
            if self._bundle_version not in (None, version):
                self.bundle_info.labels(version=self._bundle_version).set(0)
            if self._device not in (None, (encoder, index)):
                self.device_info.labels(*self._device).set(0)
        self.bundle_info.labels(version=version).set(1)
        self.device_info.labels(encoder=encoder, index=index).set(1)
        self._bundle_version, self._device = version, (encoder, index)

    def observe_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self._child(self.stage_latency, stage).observe(ms / 1000.0)

    def count_request(self, endpoint: str, outcome: str) -> None:
        self._child(self.requests, endpoint, outcome).inc()

    def count_history_cache(self, outcome: str) -> None:
        self._child(self.history_cache, outcome).inc()

    def count_degraded(self, reason: str) -> None:
        self._child(self.degraded, reason).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        # `labels()` takes a lock and checks its arguments on every call; a request records
        # about ten values, so the children are looked up once and kept.
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def mark_process_dead(self) -> None:
        """At a worker's shutdown: its live gauges leave the shared files (its counts stay)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))

    def render(self) -> bytes:
        return generate_latest(self.registry)
