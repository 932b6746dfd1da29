import math

import numpy as np
import pytest

from training.evaluate import EvalOptions, _sample_negatives, evaluate_scorer
from training.metrics import ranking_metrics, target_ranks


def test_target_rank_counts_strictly_higher_scores():
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.2, 0.2, 0.2, 0.1]])
    assert target_ranks(scores, np.array([0.3, 0.2])).tolist() == [2, 0]


def test_metrics_match_hand_computed_values():
    metrics = ranking_metrics(np.array([0, 1, 4, 10, 25]), cutoffs=(5, 20))
    assert metrics["hr@5"] == pytest.approx(3 / 5)
    assert metrics["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert metrics["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 5)
    assert metrics["hr@20"] == pytest.approx(4 / 5)
    assert metrics["ndcg@20"] == pytest.approx(
        (1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(12)) / 5
    )
    assert metrics["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 11) / 5)


def test_metrics_refuse_empty_input():
    with pytest.raises(ValueError, match="zero users"):
        ranking_metrics(np.array([]))


def fixed_scorer(table: np.ndarray):
    def score(item_seq: np.ndarray) -> np.ndarray:
        return np.repeat(table[None, :], item_seq.shape[0], axis=0).astype(np.float32)

    return score


def test_masking_history_lifts_the_target_above_seen_items():
    # items 1..5; the user saw 4 and 5, which score above the target 3
    scorer = fixed_scorer(np.array([0.0, 0.1, 0.2, 0.3, 0.9, 0.8]))
    inputs = [np.array([4, 5])]
    targets = np.array([3])
    masked = evaluate_scorer(scorer, inputs, targets, EvalOptions(max_len=5, history="masked"))
    kept = evaluate_scorer(scorer, inputs, targets, EvalOptions(max_len=5, history="kept"))
    assert masked["full"]["mrr@5"] == pytest.approx(1.0)
    assert kept["full"]["mrr@5"] == pytest.approx(1 / 3)


def test_masking_never_removes_the_target_itself():
    scorer = fixed_scorer(np.array([0.0, 0.9, 0.1, 0.2]))
    metrics = evaluate_scorer(
        scorer, [np.array([1, 2])], np.array([1]), EvalOptions(max_len=5, history="masked")
    )
    assert metrics["full"]["hr@5"] == 1.0


@pytest.mark.parametrize("weighted", [False, True])
def test_sampled_negatives_avoid_history_and_target(weighted):
    rng = np.random.default_rng(0)
    n_items = 300
    histories = [rng.choice(np.arange(1, n_items + 1), size=40, replace=False) for _ in range(20)]
    targets = np.array([int(h[0]) % n_items + 1 for h in histories])
    weights = np.arange(n_items + 1, dtype=np.float64) if weighted else None
    negatives = _sample_negatives(histories, targets, n_items, 100, weights, rng)
    assert negatives.shape == (20, 100)
    for history, target, row in zip(histories, targets, negatives, strict=True):
        assert len(set(row.tolist())) == 100
        assert not set(row.tolist()) & (set(history.tolist()) | {int(target)})
        assert row.min() >= 1 and row.max() <= n_items


def test_popularity_sampling_prefers_popular_items():
    rng = np.random.default_rng(1)
    n_items = 1000
    weights = np.zeros(n_items + 1)
    weights[1:] = 1.0 / np.arange(1, n_items + 1)
    negatives = _sample_negatives(
        [np.array([], dtype=np.int64)] * 50, np.full(50, n_items), n_items, 100, weights, rng
    )
    uniform = _sample_negatives(
        [np.array([], dtype=np.int64)] * 50, np.full(50, n_items), n_items, 100, None, rng
    )
    assert np.median(negatives) < np.median(uniform) / 2
