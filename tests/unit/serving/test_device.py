"""The served device is what ONNX Runtime and FAISS really loaded: `cuda` refuses a fallback and
names what is missing, `auto` falls back with one warning. On this CPU machine the missing CUDA
provider is simulated by advertising it (the CPU build then really falls back, as the GPU build
does without its CUDA libraries); no GPU or GPU build is faked beyond that."""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pytest

from serving.device import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    DeviceError,
    encoder_device,
    place_index,
    requested_providers,
)
from serving.model import load_model
from serving.settings import Settings


def test_providers_asked_for() -> None:
    assert requested_providers("cpu", [CUDA_PROVIDER, CPU_PROVIDER]) == [CPU_PROVIDER]
    assert requested_providers("auto", [CUDA_PROVIDER, CPU_PROVIDER]) == [
        CUDA_PROVIDER,
        CPU_PROVIDER,
    ]
    assert requested_providers("auto", [CPU_PROVIDER]) == [CPU_PROVIDER]
    with pytest.raises(DeviceError, match=r"no CUDA provider .* `gpu` extra"):
        requested_providers("cuda", [CPU_PROVIDER])


def test_a_cuda_provider_asked_for_but_not_loaded(caplog: pytest.LogCaptureFixture) -> None:
    asked = [CUDA_PROVIDER, CPU_PROVIDER]
    with pytest.raises(DeviceError, match="did not load its CUDA provider"):
        encoder_device("cuda", asked, [CPU_PROVIDER])
    with caplog.at_level(logging.WARNING, logger="serving.device"):
        assert encoder_device("auto", asked, [CPU_PROVIDER]) == "cpu"
    assert len(caplog.records) == 1 and "falls back to the CPU" in caplog.records[0].message
    assert encoder_device("auto", asked, asked) == "cuda"
    assert encoder_device("cpu", [CPU_PROVIDER], [CPU_PROVIDER]) == "cpu"


def test_the_index_under_cuda_auto_and_cpu(caplog: pytest.LogCaptureFixture) -> None:
    index = faiss.IndexFlatIP(8)
    index.add(np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32))
    with pytest.raises(DeviceError, match=r"INTENTREC_DEVICE=cuda, but .*faiss-gpu"):
        place_index(index, "cuda", "cuda")
    with caplog.at_level(logging.WARNING, logger="serving.device"):
        placed, where = place_index(index, "auto", "cuda")
    assert where == "cpu" and placed is index
    assert "index stays on the CPU" in caplog.text
    assert place_index(index, "cpu", "cpu")[1] == "cpu"


@pytest.fixture
def cuda_advertised(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA_PROVIDER, CPU_PROVIDER])


@pytest.mark.slow
def test_a_real_session_that_falls_back_is_reported_as_cpu(
    tiny_export_sasrec, cuda_advertised, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="serving.device"):
        model = load_model(tiny_export_sasrec.bundle_dir, Settings(device="auto"))
    assert (model.device.encoder, model.device.index, model.device.name) == ("cpu",) * 3
    assert model.device.providers == (CPU_PROVIDER,)
    assert model.device.index_type == "IndexIDMap(IndexFlatIP)"
    assert "falls back to the CPU" in caplog.text


@pytest.mark.slow
def test_cuda_refuses_the_fallback_at_load(tiny_export_sasrec, cuda_advertised) -> None:
    with pytest.raises(DeviceError, match="did not load its CUDA provider"):
        load_model(tiny_export_sasrec.bundle_dir, Settings(device="cuda"))
