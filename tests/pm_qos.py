"""The kernel's PM QoS CPU latency device as the tests see it: usable here, and its limit."""

from __future__ import annotations

import os
import struct

import pytest

from serving.cpu_latency import PM_QOS_DEVICE

DEVICE_USABLE = PM_QOS_DEVICE.exists() and os.access(PM_QOS_DEVICE, os.R_OK | os.W_OK)
needs_device = pytest.mark.skipif(
    not DEVICE_USABLE, reason=f"{PM_QOS_DEVICE} is not writable here (needs root)"
)

# Larger than any limit this machine would hold on its own, smaller than the kernel's default:
# the limit in force shows whether this test's request is the one in effect.
PROBE_LIMIT_US = 1_234_567


def read_limit_us() -> int:
    """The limit in force now: the smallest any process holds (the kernel's default if none)."""
    with PM_QOS_DEVICE.open("rb") as f:
        return struct.unpack("i", f.read(4))[0]
