"""Train (tiny) -> export -> load: the served path ranks exactly as torch does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models_export.bundle import load_bundle
from models_export.index import search_intents
from models_export.index_build import IndexSettings, build_index, recall_at
from models_export.onnx_export import INPUT_NAME, OUTPUT_NAME, PARITY_TOLERANCE
from models_export.verify import open_encoder, verify_bundle
from training.checkpoint import load_model
from training.sequences import left_pad

ARCHS = ["sasrec", "disen", "searched"]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_top10_of_100_users_identical_to_torch(exported, arch: str) -> None:
    run_dir, result = exported[arch]
    model, checkpoint = load_model(run_dir)
    bundle = load_bundle(result.current_link)
    assert bundle.version == result.manifest.version
    users = left_pad(
        [np.asarray(s) for s in checkpoint.sample_sequences[:100]], model.config.max_len
    )
    assert len(users) == 100

    with torch.no_grad():
        scores = model.score_all(torch.from_numpy(users))
    scores[:, 0] = -torch.inf  # padding is not an item
    want = torch.topk(scores, 10, dim=1).indices.numpy()

    (vectors,) = open_encoder(bundle.encoder_path).run([OUTPUT_NAME], {INPUT_NAME: users})
    assert vectors.shape == (100, model.n_intents, model.config.dim)
    _, got = search_intents(bundle.index, vectors, 10)
    np.testing.assert_array_equal(got, want)
    # the catalog maps the same internal ids back to the checkpoint's external ids
    assert [bundle.catalog.external_ids[i] for i in got[0]] == [
        checkpoint.item_ids[i] for i in want[0]
    ]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches_torch_at_any_batch_and_length(exported, arch: str) -> None:
    run_dir, result = exported[arch]
    model, checkpoint = load_model(run_dir)
    manifest = result.manifest
    assert manifest.onnx.n_parity_sequences == 1000
    assert 0.0 <= manifest.onnx.parity_max_abs_diff <= PARITY_TOLERANCE
    assert manifest.onnx.opset >= 17
    assert manifest.model.intents == model.n_intents

    session = open_encoder(result.bundle_dir / "encoder.onnx")
    longest = max(checkpoint.sample_sequences, key=len)
    max_len = model.config.max_len
    for batch, length in [(1, 1), (1, max_len), (7, 5), (3, max_len + 13)]:
        seqs = [np.asarray(longest[: length - row]) for row in range(batch)]
        item_seq = left_pad(seqs, length)
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: item_seq})
        with torch.no_grad():
            want = model.encode(torch.from_numpy(item_seq)).numpy()
        assert got.dtype == np.float32
        assert got.shape == (batch, model.n_intents, model.config.dim)
        assert np.abs(got - want).max() <= PARITY_TOLERANCE, (batch, length)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_exported_bundle_verifies(exported, arch: str) -> None:
    _, result = exported[arch]
    report = verify_bundle(result.bundle_dir)
    assert report.version == result.manifest.version
    assert report.parity_max_abs_diff <= PARITY_TOLERANCE
    assert report.index_ntotal == result.manifest.model.n_items
    catalog = load_bundle(result.bundle_dir).catalog
    assert len(catalog) == result.manifest.model.n_items + 1
    assert catalog.external_ids[0] == load_model(exported[arch][0])[1].item_ids[0]


@pytest.mark.slow
def test_ivf_over_trained_items_against_brute_force(exported) -> None:
    """Forcing the approximate index on real item vectors and real user vectors."""
    _, result = exported["disen"]
    bundle = load_bundle(result.bundle_dir)
    with np.load(result.bundle_dir / "samples.npz") as samples:
        users = samples["user_vectors"]
    tune, fresh = users[:128], users[128:]
    settings = IndexSettings(flat_max_items=0, nlist=32, tune_users=128)
    built = build_index(bundle.item_vectors, tune, settings)
    assert built.info.kind == "ivf"
    assert built.info.recall_at_100 >= settings.target_recall
    exact = (fresh @ bundle.item_vectors.T).max(axis=1)
    exact[:, 0] = -np.inf
    truth = np.argsort(-exact, axis=1)[:, :100]
    _, approx = search_intents(built.index, fresh, 100)
    assert recall_at(approx, truth) >= settings.target_recall - 0.02
