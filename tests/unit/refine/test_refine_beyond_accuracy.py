"""The refine evaluation's beyond-accuracy figures per variant and refine's signed effect."""

from __future__ import annotations

import numpy as np
import pytest

from serving.refine.evaluate import VariantResult, beyond_accuracy_by_variant


def test_refine_effect_is_refined_minus_encoder_with_its_sign() -> None:
    # 12 items; popularity falls with the id, so a higher id is a less popular item
    popularity = np.array([0, *range(120, 0, -10)])
    vectors = np.eye(13)
    encoder, refined = VariantResult(), VariantResult()
    for user in range(3):
        ranking = list(range(1, 13))
        encoder.add(ranking, target=1)
        # the LLM moves the least popular candidate (12) into position 10 for the first user
        if user == 0:
            ranking = [*ranking[:9], 12, 10, 11]
        refined.add(ranking, target=1)
    figures = beyond_accuracy_by_variant(
        {"encoder": encoder, "refined": refined}, popularity, 200, vectors
    )
    assert figures["k"] == 10
    assert figures["encoder"]["coverage"] == pytest.approx(10 / 12)
    assert figures["refined"]["coverage"] == pytest.approx(11 / 12)
    effect = figures["refine_effect"]
    assert effect["coverage"] == pytest.approx(1 / 12)
    assert effect["popularity_percentile"] < 0  # a less popular item shown instead
    assert effect["novelty"] > 0
    assert effect["diversity"] == pytest.approx(0.0)  # orthogonal items either way
