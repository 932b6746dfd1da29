"""The seam between the recommend pipeline and the LLM refine stage.

The pipeline hands the filtered candidate list to a `Refiner` and gets back an order of the same
candidates; everything LLM-specific (prompt, client, breaker, cache) stays behind this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RefinePolicy(StrEnum):
    OFF = "off"
    ON = "on"
    AUTO = "auto"


class Degraded(StrEnum):
    """Why an answer is not the full pipeline's: the response's `degraded` list."""

    COLD_START = "cold_start"  # no usable history: popularity answered
    HISTORY_STORE_UNAVAILABLE = "history_store_unavailable"
    HISTORY_SKIPPED_BUDGET = "history_skipped_budget"
    ENCODE_SKIPPED_BUDGET = "encode_skipped_budget"  # popularity answered
    REFINE_UNAVAILABLE = "refine_unavailable"  # refine=on without a configured LLM
    REFINE_SKIPPED_BUDGET = "refine_skipped_budget"
    REFINE_TIMEOUT = "refine_timeout"
    REFINE_ERROR = "refine_error"
    REFINE_INVALID_OUTPUT = "refine_invalid_output"
    REFINE_BREAKER_OPEN = "refine_breaker_open"
    REFINE_SHED = "refine_shed"  # too many LLM calls in flight
    # explain asked of a bundle exported before explanations (no history weights output)
    EXPLAIN_UNAVAILABLE = "explain_unavailable"


@dataclass(frozen=True, slots=True)
class Candidate:
    item_id: int  # internal id in the bundle
    external_id: str
    title: str
    text: str
    score: float  # encoder score (max over intents)


@dataclass(slots=True)
class RefineOutcome:
    candidates: list[Candidate]  # a permutation of the input; positions < fixed_top never move
    refined: bool
    from_cache: bool = False
    degraded: list[Degraded] = field(default_factory=list)
    elapsed_ms: float = 0.0


class Refiner(Protocol):
    def wants(self, policy: RefinePolicy) -> bool:
        """Whether a request with this policy should be refined (`auto` reads the measured lift)."""
        ...

    async def refine(
        self,
        *,
        model_version: str,
        history: list[Candidate],
        candidates: list[Candidate],
        remaining_ms: float,
        user_id: str | None = None,
    ) -> RefineOutcome:
        """Reorder candidates below the fixed top within `remaining_ms`; never raises.
        `user_id`: whose request it is, so that forgetting the user erases the cached answer."""
        ...

    async def aclose(self) -> None: ...
