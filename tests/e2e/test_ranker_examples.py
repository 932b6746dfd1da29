"""Ranker examples come from the served model's own retrieval of training users' histories and
never read a validation or test item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ranker.examples import build_examples, cut_points
from serving.model import load_model
from serving.refine.settings import RefineSettings
from serving.settings import Settings
from tests.conftest import ML100K
from tests.e2e.conftest import ServerFactory
from training.data import load_dataset

pytestmark = pytest.mark.slow


def test_cut_points_are_the_most_recent_positions() -> None:
    assert cut_points(6, 1) == [5]
    assert cut_points(6, 3) == [3, 4, 5]
    assert cut_points(3, 10) == [1, 2]
    assert cut_points(1, 2) == []


@pytest.fixture(scope="module")
def served(tiny_bundle: Path):
    return load_model(tiny_bundle, Settings(bundle_dir=tiny_bundle.parent))


def test_examples_read_only_training_items(served) -> None:
    dataset = load_dataset(ML100K)
    split = dataset.split()
    users = list(range(0, 300))
    sequences = [[dataset.item_ids[i] for i in split.train[u]] for u in users]
    settings = RefineSettings()
    examples, counts = build_examples(
        served, [dataset.user_ids[u] for u in users], sequences, settings, cuts_per_user=3
    )
    assert counts["kept"] == len(examples) > 0
    assert counts["cuts"] == sum(counts[k] for k in ("outside_candidates", "in_fixed_top", "kept"))
    by_user = {dataset.user_ids[u]: u for u in users}
    fixed = settings.refine_fixed_top
    for example in examples:
        u = by_user[example.user]
        train = [dataset.item_ids[i] for i in split.train[u]]
        held_out = {
            dataset.item_ids[split.valid_targets[u]],
            dataset.item_ids[split.test_targets[u]],
        }
        history = [c.external_id for c in example.history]
        answer = example.tail[example.answer].external_id
        # the history is a prefix of the training part, the answer the item after it
        cut = len(train) - train[::-1].index(history[-1]) - 1 if history else 0
        assert train[cut - len(history) + 1 : cut + 1] == history
        assert answer == train[cut + 1]
        assert not held_out & {answer} and not held_out & set(history) - set(train)
        assert len(example.tail) == settings.refine_candidates - fixed
        assert answer not in history  # seen items are excluded, as /recommend does


def test_an_examples_candidates_are_what_recommend_returns(
    served, tiny_bundle: Path, start_server: ServerFactory
) -> None:
    dataset = load_dataset(ML100K)
    split = dataset.split()
    settings = RefineSettings()
    examples = []
    # users whose whole training part fits the encoder (30 items here): the example's history
    # is then the full history /recommend is given, and excludes the same items
    for u in (u for u in range(len(split.train)) if len(split.train[u]) <= served.max_len):
        found, _ = build_examples(
            served,
            [dataset.user_ids[u]],
            [[dataset.item_ids[i] for i in split.train[u]]],
            settings,
        )
        examples += found
        if len(examples) >= 3:
            break
    with start_server(bundle_dir=tiny_bundle.parent) as server, server.client() as client:
        for example in examples:
            history = [c.external_id for c in example.history]
            body = client.post(
                "/recommend",
                json={"history": history, "k": settings.refine_candidates, "refine": "off"},
            ).json()
            served_ids = [item["item_id"] for item in body["items"]]
            assert served_ids[settings.refine_fixed_top :] == [c.external_id for c in example.tail]
    assert np.all([e.answer >= 0 for e in examples])
