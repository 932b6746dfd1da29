"""A PM QoS CPU latency request, held while the service answers recommendations.

When a server idles between requests its CPU goes idle, and on a VM an idle vCPU halts: the
host takes the core back, the next request pays the wake-up, and the code right after it runs
on cold caches (on the 2-core VM of docs/benchmarks.md an answer's ~0.4 ms at one client holds
~0.15 ms of this). Linux lets a process cap how deep CPUs may idle: while a process keeps
`/dev/cpu_dma_latency` open with a value written to it, the cpuidle governor picks only idle
states whose exit latency is within it, and 0 leaves just polling. That costs CPU time while
idle, so the request is held only while recommend traffic flows, and let go once it stops.

Opt-in (`INTENTREC_CPU_LATENCY_US`); the device is root's, so without it the service logs why
and serves as usual.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PM_QOS_DEVICE = Path("/dev/cpu_dma_latency")


class CpuLatencyRequest:
    """One process's request: in force while held, withdrawn by `release` (closing the file)."""

    def __init__(self, limit_us: int, device: Path = PM_QOS_DEVICE) -> None:
        self.limit_us = limit_us
        self.device = device
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def hold(self) -> None:
        """Idempotent; raises OSError (PermissionError without root) when the device refuses."""
        if self._fd is not None:
            return
        fd = os.open(self.device, os.O_WRONLY)
        try:
            os.write(fd, struct.pack("i", self.limit_us))
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def usable(self) -> bool:
        """Hold and release once, so a missing device or permission shows at start, not later."""
        try:
            self.hold()
        except OSError as exc:
            log.warning(
                "INTENTREC_CPU_LATENCY_US=%d: cannot hold a CPU latency request through %s (%s); "
                "it needs root (in a container, the device passed in). Serving without it.",
                self.limit_us,
                self.device,
                exc,
            )
            return False
        self.release()
        return True


async def hold_while_busy(
    request: CpuLatencyRequest,
    served: Callable[[], int],
    idle_s: float,
    on_change: Callable[[bool], None] = lambda held: None,
) -> None:
    """Holds `request` from the first check that sees `served()` grow until `idle_s` pass
    without it growing. Checks four times per `idle_s`: the request path only counts."""
    loop = asyncio.get_running_loop()
    last_count = served()
    last_seen = loop.time()
    try:
        while True:
            await asyncio.sleep(idle_s / 4)
            count = served()
            if count != last_count:
                last_count, last_seen = count, loop.time()
                if not request.held:
                    try:
                        request.hold()
                    except OSError as exc:  # it worked at start: the device went away
                        log.warning("stopped holding the CPU latency request: %s", exc)
                        return
                    on_change(True)
            elif request.held and loop.time() - last_seen >= idle_s:
                request.release()
                on_change(False)
    finally:
        if request.held:
            request.release()
            on_change(False)
