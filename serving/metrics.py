"""Prometheus metrics, one registry per app (tests build several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.125, 0.25, 0.5, 1, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.bundle_info = Gauge(
            "intentrec_bundle_info", "The served bundle (value 1).", ["version"], registry=r
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

    def set_bundle(self, version: str) -> None:
        self.bundle_info.clear()
        self.bundle_info.labels(version=version).set(1)

    def observe_timings(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stage_latency.labels(stage=stage).observe(ms / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
