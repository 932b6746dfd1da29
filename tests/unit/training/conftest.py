"""Fixtures of the training unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.synthetic import SynthConfig, generate, write_synthetic


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic data set (60 users, 300 items) in atomic files: searches run in seconds."""
    out = tmp_path_factory.mktemp("tiny")
    data = generate(SynthConfig(users=60, items=300, actions=1200, seed=5))
    write_synthetic(data, out / "tiny.inter", "atomic")
    return out
