"""Session fixtures shared by the whole suite: short real training runs on the shipped ml-100k."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ML100K = REPO_ROOT / "data" / "ml-100k"

# Small enough to train in seconds on 2 cores, long enough to beat popularity on validation: at
# lr 1e-3, 12 epochs (96 optimiser steps) leave both models at popularity level. Every option
# the models' tuned defaults set is pinned here, so that the tiny runs stay tiny.
TINY_COMMON = {
    "data": str(ML100K),
    "dim": 32,
    "layers": 1,
    "heads": 1,
    "dropout": 0.2,
    "loss": "ce",
    "max_len": 30,
    "epochs": 12,
    "patience": 4,
    "lr": 5e-3,
    "recent_window_share": 1.0,
    "batch_size": 128,
}


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep processed-data caches of the test run out of the working tree."""
    mp = pytest.MonkeyPatch()
    mp.setenv("INTENTREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def _train(tmp_path_factory: pytest.TempPathFactory, name: str, **overrides) -> Path:
    from training.config import train_config
    from training.train import run_training

    config = train_config(**(TINY_COMMON | overrides))
    return run_training(config, tmp_path_factory.mktemp(name), progress=False).run_dir


@pytest.fixture(scope="session")
def tiny_run_sasrec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory (checkpoint.pt + metrics.json) of a short SASRec run on ml-100k."""
    return _train(tmp_path_factory, "run-sasrec", model="sasrec")


@pytest.fixture(scope="session")
def tiny_run_disen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a short DisenSeq run (K = 2 intents) on ml-100k."""
    return _train(tmp_path_factory, "run-disen", model="disen", intents=2)


# A searched trunk (`intentrec search`) with both layer types and a skip connection: attention
# over the embeddings, a residual sum, then a feed-forward step with a skip from layer 2
SEARCHED_TRUNK = {
    "layers": [
        {"type": "attention", "query_op": "linear", "memory_source": 0, "key_op": "linear",
         "value_op": "identity"},
        {"type": "addition", "op": "identity", "extra_source": 0, "extra_op": "identity"},
        {"type": "addition", "op": "ffn", "extra_source": 2, "extra_op": "identity"},
    ]
}  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run_searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short DisenSeq run (K = 2) on the searched trunk SEARCHED_TRUNK."""
    return _train(tmp_path_factory, "run-searched", model="disen", intents=2, trunk=SEARCHED_TRUNK)


@pytest.fixture(scope="session")
def tiny_export_searched(tmp_path_factory: pytest.TempPathFactory, tiny_run_searched: Path):
    return _export(tmp_path_factory, tiny_run_searched, "bundles-searched")


@pytest.fixture(scope="session")
def tiny_run_new_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short SASRec run with a tenth of the catalog held out of training as new items."""
    return _train(tmp_path_factory, "run-new-items", model="sasrec", new_items=0.1)


def _export(tmp_path_factory: pytest.TempPathFactory, run_dir: Path, name: str):
    from models_export.export import export_run

    return export_run(run_dir, tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def tiny_export_sasrec(tmp_path_factory: pytest.TempPathFactory, tiny_run_sasrec: Path):
    """ExportResult of the tiny SASRec run, in its own bundles root with `current` set."""
    return _export(tmp_path_factory, tiny_run_sasrec, "bundles-sasrec")


@pytest.fixture(scope="session")
def tiny_export_disen(tmp_path_factory: pytest.TempPathFactory, tiny_run_disen: Path):
    """ExportResult of the tiny DisenSeq run (K = 2)."""
    return _export(tmp_path_factory, tiny_run_disen, "bundles-disen")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_export_sasrec) -> Path:
    """A real bundle directory exported from the tiny SASRec run."""
    return tiny_export_sasrec.bundle_dir


@pytest.fixture(scope="session")
def tiny_bundle_disen(tiny_export_disen) -> Path:
    """A real multi-intent bundle directory exported from the tiny DisenSeq run."""
    return tiny_export_disen.bundle_dir


@pytest.fixture(scope="session")
def cuda_onnxruntime() -> None:
    """Skips a GPU test where ONNX Runtime has no CUDA provider."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu (the `gpu` extra) and a CUDA GPU")


@pytest.fixture(scope="session")
def gpu_faiss() -> None:
    """Skips a GPU test where FAISS sees no GPU."""
    from models_export.index import gpu_available

    if not gpu_available():
        pytest.skip("needs faiss-gpu (the `gpu` extra) and a CUDA GPU")
