"""The CPU latency request against the kernel's real PM QoS device (root only, else skipped)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from serving.cpu_latency import CpuLatencyRequest, hold_while_busy
from tests.pm_qos import PROBE_LIMIT_US, needs_device, read_limit_us


async def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@needs_device
def test_a_held_request_is_the_limit_in_force_until_released() -> None:
    before = read_limit_us()
    if before <= PROBE_LIMIT_US:
        pytest.skip(f"another process holds a tighter limit ({before} us)")
    request = CpuLatencyRequest(PROBE_LIMIT_US)
    request.hold()
    request.hold()  # idempotent: still one request
    try:
        assert request.held
        assert read_limit_us() == PROBE_LIMIT_US
    finally:
        request.release()
    assert not request.held
    assert read_limit_us() == before


@needs_device
async def test_held_while_requests_come_and_let_go_once_they_stop() -> None:
    before = read_limit_us()
    if before <= PROBE_LIMIT_US:
        pytest.skip(f"another process holds a tighter limit ({before} us)")
    request = CpuLatencyRequest(PROBE_LIMIT_US)
    served = 0
    changes: list[bool] = []
    watcher = asyncio.create_task(hold_while_busy(request, lambda: served, 0.4, changes.append))
    try:
        await asyncio.sleep(0.3)
        assert not request.held, "held before any request"
        for _ in range(10):  # traffic for 0.5 s
            served += 1
            await asyncio.sleep(0.05)
        assert request.held
        assert read_limit_us() == PROBE_LIMIT_US
        await _until(lambda: not request.held)
        assert read_limit_us() == before
        served += 1  # traffic again: held again
        await _until(lambda: request.held)
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert not request.held, "cancelling the watcher (shutdown) releases the request"
    assert read_limit_us() == before
    assert changes == [True, False, True, False]


def test_a_device_that_cannot_be_opened_is_logged_with_the_setting_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-device"
    request = CpuLatencyRequest(0, device=missing)
    with caplog.at_level(logging.WARNING, logger="serving.cpu_latency"):
        assert not request.usable()
    assert not request.held
    assert "INTENTREC_CPU_LATENCY_US=0" in caplog.text
    assert str(missing) in caplog.text
