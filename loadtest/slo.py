"""Service-level objectives of a load run and the check over its figures (pure, no I/O).

Thresholds come from `INTENTREC_SLO_*` environment variables; the locustfile turns Locust's stats
and its own response counters into `LoadFigures` and sets a non-zero exit code when
`check_slo(...).passed` is false.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SloSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTENTREC_SLO_", extra="ignore")

    # End-to-end p99 seen by the client, over all requests of the run.
    p99_ms: float = Field(default=100.0, gt=0.0)
    # Failed requests (transport errors, non-2xx, responses that break the contract) / requests.
    max_error_rate: float = Field(default=0.001, ge=0.0, le=1.0)
    # /recommend answers degraded for a reason not listed in `expected_degraded` / answers.
    max_degraded_rate: float = Field(default=0.05, ge=0.0, le=1.0)
    # /recommend answers whose server-side total exceeded budget_ms + budget_slack_ms / answers.
    max_over_budget_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    budget_slack_ms: float = Field(default=5.0, ge=0.0)
    # A run with fewer requests proves nothing.
    min_requests: int = Field(default=1, ge=1)
    # Cold users get popularity by design: that reason is part of the mix, not a degradation.
    expected_degraded: list[str] = Field(default_factory=lambda: ["cold_start"])


@dataclass(slots=True)
class ResponseCounters:
    """What Locust's stats do not count: how the successful /recommend answers were produced."""

    recommend_ok: int = 0
    degraded: int = 0
    over_budget: int = 0
    refined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def record(
        self,
        *,
        degraded: Iterable[str],
        refined: bool,
        total_ms: float | None,
        budget_ms: float,
        slo: SloSettings,
    ) -> None:
        reasons = list(degraded)
        self.recommend_ok += 1
        self.reasons.update(reasons)
        if any(reason not in slo.expected_degraded for reason in reasons):
            self.degraded += 1
        if refined:
            self.refined += 1
        if total_ms is not None and total_ms > budget_ms + slo.budget_slack_ms:
            self.over_budget += 1

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add counters reported by a Locust worker (`to_dict` on the other side)."""
        self.recommend_ok += int(other["recommend_ok"])
        self.degraded += int(other["degraded"])
        self.over_budget += int(other["over_budget"])
        self.refined += int(other["refined"])
        self.reasons.update(other["reasons"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommend_ok": self.recommend_ok,
            "degraded": self.degraded,
            "over_budget": self.over_budget,
            "refined": self.refined,
            "reasons": dict(self.reasons),
        }

    def reset(self) -> None:
        self.recommend_ok = self.degraded = self.over_budget = self.refined = 0
        self.reasons.clear()


class StatsEntryLike(Protocol):
    """The part of Locust's `StatsEntry` (`environment.stats.total`) that the check reads."""

    num_requests: int
    num_failures: int
    total_rps: float

    def get_response_time_percentile(self, percent: float) -> float: ...


@dataclass(frozen=True, slots=True)
class LoadFigures:
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    recommend_ok: int
    degraded: int
    over_budget: int
    refined: int
    degraded_reasons: dict[str, int]

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def degraded_rate(self) -> float:
        return self.degraded / self.recommend_ok if self.recommend_ok else 0.0

    @property
    def over_budget_rate(self) -> float:
        return self.over_budget / self.recommend_ok if self.recommend_ok else 0.0


def figures_from_stats(total: StatsEntryLike, counters: ResponseCounters) -> LoadFigures:
    """Combine Locust's aggregated entry with the response counters."""
    has = total.num_requests > 0
    return LoadFigures(
        requests=total.num_requests,
        failures=total.num_failures,
        rps=float(total.total_rps),
        p50_ms=float(total.get_response_time_percentile(0.5) or 0.0) if has else 0.0,
        p95_ms=float(total.get_response_time_percentile(0.95) or 0.0) if has else 0.0,
        p99_ms=float(total.get_response_time_percentile(0.99) or 0.0) if has else 0.0,
        recommend_ok=counters.recommend_ok,
        degraded=counters.degraded,
        over_budget=counters.over_budget,
        refined=counters.refined,
        degraded_reasons=dict(counters.reasons),
    )


@dataclass(frozen=True, slots=True)
class Objective:
    name: str
    measured: float
    threshold: float
    passed: bool
    rule: str  # "<=" or ">="


@dataclass(frozen=True, slots=True)
class SloResult:
    objectives: list[Objective]

    @property
    def passed(self) -> bool:
        return all(objective.passed for objective in self.objectives)

    @property
    def missed(self) -> list[Objective]:
        return [objective for objective in self.objectives if not objective.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "objectives": [asdict(o) for o in self.objectives]}


def _at_most(name: str, measured: float, threshold: float) -> Objective:
    return Objective(name, measured, threshold, measured <= threshold, "<=")


def _at_least(name: str, measured: float, threshold: float) -> Objective:
    return Objective(name, measured, threshold, measured >= threshold, ">=")


def check_slo(figures: LoadFigures, slo: SloSettings) -> SloResult:
    """Every objective of `slo` against the run's figures."""
    return SloResult(
        [
            _at_least("requests", figures.requests, slo.min_requests),
            _at_most("p99_ms", figures.p99_ms, slo.p99_ms),
            _at_most("error_rate", figures.error_rate, slo.max_error_rate),
            _at_most("degraded_rate", figures.degraded_rate, slo.max_degraded_rate),
            _at_most("over_budget_rate", figures.over_budget_rate, slo.max_over_budget_rate),
        ]
    )
