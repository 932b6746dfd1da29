"""A bundle of a searched architecture (`intentrec search`, `train --arch`) serves `/recommend`
like one of the hand-designed trunk: the answer's ranking is the torch model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.e2e.conftest import ServerFactory
from training.checkpoint import load_model
from training.sequences import left_pad

pytestmark = pytest.mark.slow


def test_recommend_answers_from_a_searched_architecture(
    tiny_run_searched: Path, tiny_export_searched, start_server: ServerFactory
) -> None:
    model, checkpoint = load_model(tiny_run_searched)
    assert model.trunk_architecture is not None
    history = checkpoint.sample_sequences[0][-10:]
    with torch.no_grad():
        scores = model.score_all(torch.from_numpy(left_pad([np.array(history)], 30)))[0]
    scores[[0, *history]] = -torch.inf
    want = [checkpoint.item_ids[i] for i in torch.topk(scores, 10).indices.tolist()]

    with (
        start_server(bundle_dir=tiny_export_searched.bundle_dir.parent) as server,
        server.client() as client,
    ):
        body = client.post(
            "/recommend", json={"history": [checkpoint.item_ids[i] for i in history], "k": 10}
        ).json()
    assert body["degraded"] == [], body
    assert [item["item_id"] for item in body["items"]] == want
