"""Where training runs: `device` resolves to something torch can use or fails by name, and a
run trained on a GPU leaves a checkpoint that loads on a CPU-only machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.checkpoint import CHECKPOINT_FILE, load_model
from training.config import train_config
from training.train import resolve_device, run_training

ML100K = Path(__file__).resolve().parents[3] / "data" / "ml-100k"


def test_auto_picks_the_gpu_only_when_torch_sees_one() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("name", ["tpu", "gpu0", "mps"])
def test_unknown_device_is_named_in_the_error(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        resolve_device(name)


def test_cuda_without_a_gpu_says_so() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_training_writes_a_cpu_loadable_checkpoint(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    config = train_config(
        data=str(ML100K), model="disen", intents=2, dim=32, layers=1, max_len=30,
        epochs=3, patience=3, lr=5e-3, device="cuda",
    )  # fmt: skip
    run_training(config, tmp_path, progress=False)
    # no map_location: tensors come back on the device they were saved from
    tensors = _tensors(torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True))
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    model, _ = load_model(tmp_path)
    assert next(model.parameters()).device.type == "cpu"
    assert json.loads((tmp_path / "metrics.json").read_text())["device"].startswith("cuda")


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    return []
