"""Beyond-accuracy figures against a small example computed by hand (see each test's numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.beyond_accuracy import (
    beyond_accuracy,
    catalog_coverage,
    exposure,
    gini_index,
    intra_list_diversity,
    novelty,
    popularity_percentiles,
)

# Four items; item 1 is the most popular, items 2 and 3 tie, item 4 was never seen in training.
POPULARITY = np.array([0, 10, 5, 5, 0])
USERS = 10
LISTS = np.array([[1, 2], [1, 3], [1, 2]])
# Items 1 and 2 are orthogonal, item 3 sits at 45 degrees to item 1.
VECTORS = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [1.0, 1.0]])


def test_exposure_counts_the_lists_showing_each_item() -> None:
    assert exposure(LISTS, 4).tolist() == [0, 3, 2, 1, 0]


def test_coverage_is_the_share_of_the_catalog_shown() -> None:
    assert catalog_coverage(LISTS, 4) == 0.75


def test_gini_of_exposure_by_hand() -> None:
    # exposure 3, 2, 1, 0: sum |xi - xj| over ordered pairs = 20, 2 n^2 mean = 48
    assert gini_index(np.array([3, 2, 1, 0])) == pytest.approx(20 / 48)
    assert gini_index(np.array([4, 4, 4, 4])) == pytest.approx(0.0)
    assert gini_index(np.array([0, 0, 0, 7])) == pytest.approx(3 / 4)


def test_popularity_percentiles_share_ties() -> None:
    assert popularity_percentiles(POPULARITY).tolist() == [0.0, 100.0, 50.0, 50.0, 0.0]


def test_novelty_is_mean_self_information_of_the_slots() -> None:
    # item 1: every user (0 bits), items 2 and 3: half the users (1 bit each); 3 of 6 slots
    assert novelty(LISTS, POPULARITY, USERS) == pytest.approx(0.5)
    # an item no training user saw counts as one user's: log2(10) bits, not infinity
    assert novelty(np.array([[4, 4]]), POPULARITY, USERS) == pytest.approx(math.log2(10))


def test_intra_list_diversity_by_hand() -> None:
    expected = (1.0 + (1.0 - 1.0 / math.sqrt(2.0)) + 1.0) / 3
    assert intra_list_diversity(LISTS, VECTORS) == pytest.approx(expected)
    assert intra_list_diversity(np.array([[1, 1]]), VECTORS) == pytest.approx(0.0)


def test_beyond_accuracy_collects_every_figure() -> None:
    figures = beyond_accuracy(LISTS, POPULARITY, USERS, VECTORS)
    assert figures == pytest.approx(
        {
            "coverage": 0.75,
            "gini": 20 / 48,
            "popularity_percentile": 75.0,
            "novelty": 0.5,
            "diversity": (2.0 + 1.0 - 1.0 / math.sqrt(2.0)) / 3,
        }
    )


@pytest.mark.parametrize(
    ("lists", "message"),
    [
        (np.array([[1, 5]]), "item ids must be in 1..4"),
        (np.array([[0, 1]]), "item ids must be in 1..4"),
        (np.zeros((0, 2), dtype=np.int64), "non-empty"),
    ],
)
def test_bad_lists_are_refused_by_name(lists: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        beyond_accuracy(lists, POPULARITY, USERS, VECTORS)
