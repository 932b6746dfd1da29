"""The GPU path against the CPU one (skipped without a GPU): ONNX Runtime's CUDA provider on the
bundles' stored parity samples, and FAISS on the GPU at 1M items."""

from __future__ import annotations

import numpy as np
import pytest

from models_export.bundle import BundleFiles, load_manifest

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.mark.parametrize("arch", ["sasrec", "disen"])
def test_onnx_runtime_on_cuda_matches_the_cpu(cuda_onnxruntime, exported, arch: str) -> None:
    import onnxruntime as ort

    bundle = exported[arch][1].bundle_dir
    manifest = load_manifest(bundle)
    samples = np.load(BundleFiles(bundle).samples)["item_seq"]
    outputs = {}
    for name, providers in {
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "cpu": ["CPUExecutionProvider"],
    }.items():
        session = ort.InferenceSession(str(BundleFiles(bundle).encoder), providers=providers)
        assert session.get_providers()[0] == providers[0]  # no silent fallback in the test
        outputs[name] = session.run([manifest.onnx.output_name], {"item_seq": samples})[0]
    np.testing.assert_allclose(outputs["cuda"], outputs["cpu"], atol=1e-4, rtol=0)


def test_gpu_faiss_flat_and_ivf_at_one_million_items(gpu_faiss) -> None:
    from models_export.bench import synthetic_catalog
    from models_export.index import search_intents, to_device
    from models_export.index_build import (
        RECALL_K,
        IndexSettings,
        build_flat,
        build_index,
        recall_at,
    )

    items, queries = synthetic_catalog(1_000_000, 64, 1500, 4, 0)
    tune, evaluate = queries[:500], queries[500:]
    flat = build_flat(items)
    exact = search_intents(flat, evaluate, RECALL_K)[1]
    gpu_flat, where = to_device(flat, "cuda")
    assert where == "cuda"
    np.testing.assert_array_equal(search_intents(gpu_flat, evaluate, RECALL_K)[1], exact)

    built = build_index(items, tune, IndexSettings())
    assert built.info.kind == "ivf"
    gpu_ivf, where = to_device(built.index, "cuda")
    assert where == "cuda"
    assert recall_at(search_intents(gpu_ivf, evaluate, RECALL_K)[1], exact) >= 0.95
