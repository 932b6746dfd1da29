"""The seam between the recommend pipeline and the LLM refine stage.

The pipeline hands the filtered candidate list to a `Refiner` and gets back an order of the same
candidates; everything LLM-specific (prompt, client, breaker, cache) stays behind this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RefineMode(StrEnum):
    SCORE = "score"
    GENERATE = "generate"


class RefinePolicy(StrEnum):
    OFF = "off"
    ON = "on"
    AUTO = "auto"


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
    degraded: list[str] = field(default_factory=list)
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
        mode: RefineMode | None = None,
    ) -> RefineOutcome:
        """Reorder candidates below the fixed top within `remaining_ms`; never raises."""
        ...

    async def aclose(self) -> None: ...
