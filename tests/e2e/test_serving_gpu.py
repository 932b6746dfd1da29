"""The API served on the GPU (skipped without one) reports the device it really runs on."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_the_api_on_the_gpu_reports_cuda(cuda_onnxruntime, gpu_faiss, start_server) -> None:
    with start_server(device="cuda") as server, server.client() as client:
        device = client.get("/readyz").json()["device"]
        answer = client.post("/recommend", json={"history": ["50", "172"], "k": 5})
    assert device["encoder"] == device["index"] == device["name"] == "cuda"
    assert device["providers"][0] == "CUDAExecutionProvider"
    assert answer.status_code == 200 and len(answer.json()["items"]) == 5
