"""Training windows and their batches: pure functions over id arrays."""

from __future__ import annotations

import numpy as np

from training.sequences import history_windows, random_windows, shuffled_batches

SEQUENCES = [np.arange(1, n + 1) for n in (3, 12, 5, 30, 1, 8, 20, 2, 9, 15)]


def _real(window: np.ndarray) -> list[int]:
    return window[window != 0].tolist()


def test_windows_end_at_the_latest_action_unless_drawn_earlier() -> None:
    latest = random_windows(SEQUENCES, 10, np.random.default_rng(0), recent_share=1.0)
    assert [_real(w) for w in latest] == [s[-10:].tolist() for s in SEQUENCES]
    earlier = random_windows(SEQUENCES, 10, np.random.default_rng(0), recent_share=0.0)
    for window, seq in zip(earlier, SEQUENCES, strict=True):
        real = _real(window)
        if len(seq) <= 10:
            assert real == seq.tolist()
        else:
            # a full window of consecutive actions ending anywhere from the 10th on
            assert len(real) == 10 and real == list(range(real[0], real[0] + 10))
    assert any(_real(w)[-1] != s[-1] for w, s in zip(earlier, SEQUENCES, strict=True))


def test_history_windows_make_every_action_after_the_first_a_target_exactly_once() -> None:
    windows = history_windows(SEQUENCES, 10)
    targets: list[int] = []
    for window in windows:
        real = _real(window)
        assert real == list(range(real[0], real[0] + len(real)))  # consecutive actions
        targets.extend(real[1:])
    # ids are positions here (1..n in every sequence): count each position's target
    expected = [position for seq in SEQUENCES for position in seq.tolist()[1:]]
    assert sorted(targets) == sorted(expected)
    # ceil((n - 1) / 9) windows of 10 overlapping by one, at least one a user; the latest
    # window of each user comes first and ends at the latest action
    per_user = [max(1, -(-(len(s) - 1) // 9)) for s in SEQUENCES]
    assert len(windows) == sum(per_user)
    first_rows = np.cumsum([0, *per_user])[:-1]
    assert [_real(windows[row]) for row in first_rows] == [s[-10:].tolist() for s in SEQUENCES]


def _lengths(windows: np.ndarray, rows: np.ndarray) -> list[int]:
    return (windows[rows] != 0).sum(1).tolist()


def test_batches_hold_every_window_once_and_by_length_they_do_not_mix_lengths() -> None:
    windows = random_windows(SEQUENCES * 5, 10, np.random.default_rng(1), recent_share=1.0)
    for by_length in (False, True):
        batches = shuffled_batches(windows, 4, np.random.default_rng(2), by_length=by_length)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(windows)))
        sizes = sorted(len(b) for b in batches)
        assert sizes[1:] == [4] * (len(batches) - 1) and 0 < sizes[0] <= 4
    by_length = shuffled_batches(windows, 4, np.random.default_rng(2), by_length=True)
    spans = [(min(_lengths(windows, b)), max(_lengths(windows, b))) for b in by_length]
    # sorted before cutting: the length ranges of two batches never overlap inside
    for low, high in spans:
        assert all(high <= other_low or other_high <= low for other_low, other_high in spans
                   if (other_low, other_high) != (low, high))  # fmt: skip
    assert sum(hi - lo for lo, hi in spans) < sum(
        max(_lengths(windows, b)) - min(_lengths(windows, b))
        for b in shuffled_batches(windows, 4, np.random.default_rng(2), by_length=False)
    )


def test_length_batches_still_shuffle_with_the_seed() -> None:
    windows = random_windows(SEQUENCES * 5, 10, np.random.default_rng(1), recent_share=1.0)
    first = shuffled_batches(windows, 4, np.random.default_rng(3), by_length=True)
    again = shuffled_batches(windows, 4, np.random.default_rng(3), by_length=True)
    other = shuffled_batches(windows, 4, np.random.default_rng(4), by_length=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))
