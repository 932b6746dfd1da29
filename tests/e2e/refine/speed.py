"""How fast the served model is on this machine, and the test limits derived from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LLMSpeed:
    """The served model's latency on the tests' own prompts, and the limits derived from it."""

    first_call_ms: float  # the very first calls: one-off start-up work
    # Warm calls, each for a history the server has never seen.
    fastest_ms: float
    slowest_ms: float

    @property
    def patient_ms(self) -> float:
        """Time a call that must succeed is given: ten times the slowest call measured, so a
        machine that slows down for a while during the run does not fail a behaviour test."""
        return 10 * self.slowest_ms + 5_000

    @property
    def call_timeout_s(self) -> float:
        return self.patient_ms / 1000

    def drain_s(self, calls: int) -> float:
        """Long enough for `calls` late calls, run at once by a server that may do one at a time."""
        return calls * self.patient_ms / 1000

    @property
    def below_call_ms(self) -> float:
        """A budget no call for a new history fits in: a quarter of the fastest one measured
        (120 ms at most, the budget these tests used on every machine where calls are slower)."""
        return min(120.0, self.fastest_ms / 4)
