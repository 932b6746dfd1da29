"""Synthetic data sets: sizes, long tail, sequential signal, round trip through the readers."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from training.data import load_dataset
from training.data.synthetic import SynthConfig, generate, write_synthetic

CONFIG = SynthConfig(users=300, items=400, actions=12_000, seed=3)


def top_successor_share(sequences: list[np.ndarray]) -> float:
    """How often the next item is the previous item's most frequent follower."""
    pairs = Counter((int(a), int(b)) for s in sequences for a, b in pairwise(s))
    best: dict[int, int] = {}
    for (a, _), count in pairs.items():
        best[a] = max(best.get(a, 0), count)
    return sum(best.values()) / sum(pairs.values())


def test_sizes_and_minimum_length() -> None:
    data = generate(CONFIG)
    assert len(data.users) == len(data.items) == len(data.timestamps) == CONFIG.actions
    per_user = np.bincount(data.users)[1:]
    assert len(per_user) == CONFIG.users and per_user.min() >= 3
    assert data.items.min() >= 1 and data.items.max() <= CONFIG.items


def test_popularity_has_a_long_tail() -> None:
    counts = np.sort(np.bincount(generate(CONFIG).items, minlength=CONFIG.items + 1)[1:])[::-1]
    head = counts[: CONFIG.items // 10].sum() / counts.sum()
    assert head > 0.4  # uniform popularity would give 0.1
    assert counts[-CONFIG.items // 2 :].sum() / counts.sum() < 0.2


def test_sequences_carry_order() -> None:
    data = generate(CONFIG)
    order = np.lexsort((data.timestamps, data.users))
    bounds = np.cumsum(np.bincount(data.users)[1:])[:-1]
    sequences = np.split(data.items[order], bounds)
    rng = np.random.default_rng(0)
    shuffled = [rng.permutation(s) for s in sequences]
    assert top_successor_share(sequences) > 1.25 * top_successor_share(shuffled)  # measured ~1.6


def test_same_seed_same_data() -> None:
    a, b = generate(CONFIG), generate(CONFIG)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.timestamps, b.timestamps)


@pytest.mark.parametrize("fmt", ["text", "atomic"])
def test_written_files_load_back(tmp_path: Path, fmt: str) -> None:
    data = generate(CONFIG)
    out = tmp_path / ("synth.txt" if fmt == "text" else "synth")
    written = write_synthetic(data, out, fmt)
    assert all(p.is_file() for p in written)
    dataset = load_dataset(out, cache_dir=tmp_path / "cache")
    assert dataset.options["fmt"] == fmt
    assert (dataset.n_users, dataset.n_actions) == (CONFIG.users, CONFIG.actions)
    first = dataset.user_ids.index("1")
    mine = data.items[data.users == 1][np.argsort(data.timestamps[data.users == 1], kind="stable")]
    assert [dataset.item_ids[i] for i in dataset.sequences[first]] == [str(i) for i in mine]
    if fmt == "atomic":
        assert dataset.item_titles[1].startswith("Synthetic item")
        assert dataset.item_texts[1].startswith("genres: topic-")


def test_too_few_actions_is_refused() -> None:
    with pytest.raises(ValueError, match="3 each"):
        generate(SynthConfig(users=10, actions=29))
