"""Per-request deadline and stage timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class Deadline:
    budget_ms: float
    started: float = field(default_factory=time.perf_counter)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    def remaining_ms(self) -> float:
        return self.budget_ms - self.elapsed_ms()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; a stage entered twice accumulates."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            spent = (time.perf_counter() - t0) * 1000.0
            self.timings_ms[name] = self.timings_ms.get(name, 0.0) + spent

    def finish(self) -> dict[str, float]:
        timings = {name: round(ms, 3) for name, ms in self.timings_ms.items()}
        timings["total"] = round(self.elapsed_ms(), 3)
        return timings
