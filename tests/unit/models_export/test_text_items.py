"""The text map for items nobody interacted with: MiniLM's real vectors, the ridge map on a
catalog where the answer is known, and the held-out check the export reports."""

from __future__ import annotations

import numpy as np
import pytest

from models_export.text_items import (
    RIDGES,
    apply_text_map,
    choose_ridge,
    embed_texts,
    fit_text_map,
    map_quality,
    text_item_vectors,
)


def linear_catalog(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Text vectors and item vectors that are an exact linear image of them (row 0: padding)."""
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(n + 1, 24)).astype(np.float32)
    image = rng.normal(size=(24, 8))
    items = (text @ image + 0.5).astype(np.float32)
    items[0] = 0.0
    return text, items


def test_the_ridge_map_recovers_a_linear_relation() -> None:
    text, items = linear_catalog()
    weights = fit_text_map(text[1:300], items[1:300], ridge=1e-6)
    predicted = apply_text_map(weights, text[300:])
    np.testing.assert_allclose(predicted, items[300:], atol=1e-3)


def test_held_out_items_are_found_when_the_map_is_right_and_not_by_chance() -> None:
    text, items = linear_catalog()
    known = np.arange(1, len(items))
    popularity = np.arange(len(items))[::-1].copy()  # item 1 most popular
    popularity[0] = 0
    quality = map_quality(text, items, known, popularity, share=0.1, seed=1)
    assert quality.held_out == 40 and quality.ridge in RIDGES
    assert quality.recall_at_100 > 0.95
    # the 100 most popular of 400 items hold about a quarter of random held-out items
    assert 0.05 < quality.popularity_recall_at_100 < 0.5

    shuffled = text.copy()
    shuffled[1:] = np.random.default_rng(2).permutation(text[1:])
    unrelated = map_quality(shuffled, items, known, popularity, share=0.1, seed=1)
    assert unrelated.recall_at_100 < 0.5


def test_new_items_get_the_mapped_direction_at_a_known_items_median_length() -> None:
    text, items = linear_catalog()
    new = np.array([5, 17, 333])
    known = np.setdiff1d(np.arange(1, len(items)), new)
    placed = text_item_vectors(text, items, known, new, ridge=0.01)
    lengths = np.linalg.norm(placed, axis=1)
    np.testing.assert_allclose(lengths, np.median(np.linalg.norm(items[known], axis=1)), rtol=1e-5)
    truth = items[new] / np.linalg.norm(items[new], axis=1, keepdims=True)
    np.testing.assert_allclose(placed / lengths[:, None], truth, atol=1e-3)


def test_the_ridge_is_chosen_on_held_out_fit_items() -> None:
    text, items = linear_catalog()
    # every ridge finds every held-out item: the tie goes to the most shrinkage
    assert choose_ridge(text, items, np.arange(1, 300), seed=0) == max(RIDGES)
    # text vectors 100x shorter: ridges of 1 and more shrink the map to nothing
    assert choose_ridge(text / 100, items, np.arange(1, 300), seed=0) < 1.0


def test_too_few_known_items_is_refused_by_name() -> None:
    text, items = linear_catalog(n=30)
    with pytest.raises(ValueError, match="needs 20 known items or more, got 5"):
        fit_text_map(text[1:6], items[1:6], ridge=1.0)


@pytest.mark.slow
def test_minilm_puts_related_titles_closer_than_unrelated_ones() -> None:
    vectors = embed_texts(
        [
            "Toy Story (1995). genres: Animation, Children's, Comedy",
            "Aladdin (1992). genres: Animation, Children's, Comedy, Musical",
            "Schindler's List (1993). genres: Drama, War",
            "Saving Private Ryan (1998). genres: Action, Drama, War",
        ]
    )
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > cosine[0, 2] and cosine[0, 1] > cosine[0, 3]
    assert cosine[2, 3] > cosine[2, 0] and cosine[2, 3] > cosine[2, 1]
