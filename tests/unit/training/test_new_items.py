"""`--new-items`: a share of the catalog held out of training as if it arrived afterwards."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ML100K
from training.data import load_dataset


@pytest.fixture(scope="module")
def ml100k():
    return load_dataset(ML100K)


def test_new_items_leave_every_training_part_and_keep_validation_and_test(ml100k) -> None:
    held, new = ml100k.with_new_items(0.1)
    assert len(new) == round(0.1 * ml100k.n_items)
    assert held.n_items == ml100k.n_items and held.item_ids == ml100k.item_ids
    split, original = held.split(), ml100k.split()
    for train in split.train:
        assert not np.isin(train, new).any()
    np.testing.assert_array_equal(split.valid_targets, original.valid_targets)
    np.testing.assert_array_equal(split.test_targets, original.test_targets)
    assert (held.popularity()[new] == 0).all()
    # only the new items' actions left: every other action is still there, in order
    for before, after in zip(ml100k.sequences, held.sequences, strict=True):
        kept = np.concatenate([before[:-2][~np.isin(before[:-2], new)], before[-2:]])
        np.testing.assert_array_equal(after, kept)


def test_the_same_share_picks_the_same_items(ml100k) -> None:
    _, first = ml100k.with_new_items(0.1)
    _, again = ml100k.with_new_items(0.1)
    _, other = ml100k.with_new_items(0.2)
    np.testing.assert_array_equal(first, again)
    assert len(other) > len(first)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1])
def test_a_share_outside_0_1_is_refused(ml100k, share: float) -> None:
    with pytest.raises(ValueError, match="new_items must be in"):
        ml100k.with_new_items(share)
