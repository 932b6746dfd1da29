"""`export --with-text-items` on a real run with a tenth of the catalog new to training: the new
items get text-mapped vectors, enter the index flagged, and the served API recommends one to a
user whose history is close to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models_export.bundle import BundleFiles, load_catalog
from models_export.export import ExportResult, export_run
from models_export.verify import open_encoder
from tests.e2e.conftest import ServerFactory
from training.checkpoint import load_model
from training.sequences import left_pad

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def text_export(tiny_run_new_items: Path, tmp_path_factory) -> ExportResult:
    out = tmp_path_factory.mktemp("bundles-text")
    return export_run(tiny_run_new_items, out, with_text_items=True)


def test_items_new_to_training_are_placed_by_their_text(
    text_export: ExportResult, tiny_run_new_items: Path
) -> None:
    manifest = text_export.manifest
    catalog = load_catalog(text_export.bundle_dir, manifest.model.n_items)
    never_trained = {i for i in range(1, len(catalog)) if catalog.popularity[i] == 0}
    assert manifest.text_items is not None
    assert manifest.text_items.count == len(never_trained) >= 0.1 * manifest.model.n_items
    assert catalog.from_text == never_trained
    assert manifest.text_items.held_out > 0
    assert 0.0 <= manifest.text_items.recall_at_100 <= 1.0

    model, _ = load_model(tiny_run_new_items)
    trained_rows = model.item_embeddings().detach().numpy()
    served_rows = np.load(BundleFiles(text_export.bundle_dir).items)
    new = sorted(never_trained)
    known = sorted(set(range(1, len(catalog))) - never_trained)
    np.testing.assert_array_equal(served_rows[known], trained_rows[known])
    assert not np.allclose(served_rows[new], trained_rows[new])


def _history_close_to_a_new_item(bundle: Path, k: int) -> tuple[list[int], int]:
    """For each new item, the 5 known items nearest its mapped vector as a history; the first
    whose encoded user has the new item in its top k (as the server ranks: seen items out)."""
    catalog = load_catalog(bundle)
    items = np.load(BundleFiles(bundle).items)
    session = open_encoder(BundleFiles(bundle).encoder)
    unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-9)
    known = np.array(sorted(set(range(1, len(catalog))) - catalog.from_text))
    for new in sorted(catalog.from_text):
        history = known[np.argsort(-(unit[known] @ unit[new]))[:5]][::-1].tolist()
        user = session.run(None, {"item_seq": left_pad([np.array(history)], 30)})[0][0]
        scores = (user @ items.T).max(axis=0)
        scores[[0, *history]] = -np.inf
        if new in np.argsort(-scores)[:k]:
            return history, new
    raise AssertionError("no new item reaches a top-k list from the history nearest to it")


def test_the_api_recommends_a_new_item_to_a_user_whose_history_is_close_to_it(
    text_export: ExportResult, start_server: ServerFactory
) -> None:
    bundle = text_export.bundle_dir
    history, new = _history_close_to_a_new_item(bundle, k=10)
    catalog = load_catalog(bundle)
    external = catalog.external_ids
    with start_server(bundle_dir=bundle.parent) as server, server.client() as client:
        body = client.post(
            "/recommend", json={"history": [external[i] for i in history], "k": 10}
        ).json()
        assert external[new] in [item["item_id"] for item in body["items"]], body
        info = client.get(f"/items/{external[new]}").json()
        assert info["from_text"] is True and info["popularity"] == 0
        assert client.get(f"/items/{external[history[0]]}").json()["from_text"] is False
