"""Pipeline: ordering and ties, duplicates, k-core, id mapping, leave-one-out, popularity."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from training.data import load_dataset
from training.data.pipeline import build_dataset, core_filter, sorted_codes
from training.data.readers import RawInteractions

ML100K = Path(__file__).resolve().parents[3] / "data" / "ml-100k"


def raw(rows: list[tuple[str, str, float]] | list[tuple[str, str]], meta=None) -> RawInteractions:
    users = np.array([r[0] for r in rows], dtype=object)
    items = np.array([r[1] for r in rows], dtype=object)
    stamps = np.array([r[2] for r in rows]) if len(rows[0]) == 3 else None
    return RawInteractions(users, items, stamps, meta)


def build(rows, k_core: int = 0, meta=None):
    return build_dataset(raw(rows, meta), name="t", source_hash="h", k_core=k_core)


def external(dataset, user: str) -> list[str]:
    sequence = dataset.sequences[dataset.user_ids.index(user)]
    return [dataset.item_ids[i] for i in sequence]


def test_actions_ordered_by_time_ties_keep_file_order() -> None:
    rows = [
        ("u", "c", 30), ("u", "a", 10), ("u", "t2", 20), ("u", "t1", 20),
        ("v", "x", 5), ("u", "t3", 20), ("v", "y", 1), ("v", "z", 9),
    ]  # fmt: skip
    dataset = build(rows)
    assert external(dataset, "u") == ["a", "t2", "t1", "t3", "c"]
    assert external(dataset, "v") == ["y", "x", "z"]
    assert all(s.dtype == np.int64 for s in dataset.sequences)


def test_without_timestamps_file_order_is_time_and_repeats_stay() -> None:
    dataset = build([("u", "b"), ("u", "a"), ("u", "b"), ("u", "b")])
    assert external(dataset, "u") == ["b", "a", "b", "b"]


def test_duplicates_of_user_item_timestamp_are_dropped() -> None:
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "a", 1), ("u", "a", 3), ("u", "c", 4)]
    assert external(build(rows), "u") == ["a", "b", "a", "c"]


def test_users_with_fewer_than_three_actions_are_dropped() -> None:
    rows = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("short", "a", 1), ("short", "d", 2)]
    dataset = build(rows)
    assert dataset.user_ids == ["u"]
    assert dataset.item_ids == ["[PAD]", "a", "b", "c"]  # "d" only occurred for a dropped user


def test_k_core_iterates_until_stable() -> None:
    rows = [
        *[("u1", i, t) for t, i in enumerate("abcx")],
        *[(u, i, t) for u in ("u2", "u3") for t, i in enumerate("abc")],
        ("u4", "x", 1), ("u4", "y", 2), ("u4", "z", 3),
        ("u5", "x", 1), ("u5", "y", 2), ("u5", "w", 3),
    ]  # fmt: skip
    # Pass 1 removes y, z, w (< 3 actions); u4 and u5 are then too short; only after that does x
    # fall to 1 action, so a single pass would have kept it.
    dataset = build(rows, k_core=3)
    assert dataset.user_ids == ["u1", "u2", "u3"]
    assert external(dataset, "u1") == ["a", "b", "c"]
    assert build(rows).n_items == 7  # without k-core everything with 3+ user actions stays


def reference_core(rows: list[tuple[int, int]], k: int) -> set[tuple[int, int, int]]:
    kept = {(u, i, n) for n, (u, i) in enumerate(rows)}
    while True:
        users = Counter(u for u, _, _ in kept)
        items = Counter(i for _, i, _ in kept)
        now = {r for r in kept if users[r[0]] >= max(k, 3) and items[r[1]] >= k}
        if now == kept:
            return kept
        kept = now


@pytest.mark.parametrize("k", [0, 2, 4])
def test_core_filter_matches_a_set_based_reference(k: int) -> None:
    rng = np.random.default_rng(k)
    users = rng.integers(0, 60, 700)
    items = rng.zipf(1.5, 700) % 80
    mask = core_filter(users, items, k)
    expected = reference_core(list(zip(users.tolist(), items.tolist(), strict=True)), k)
    assert {n for _, _, n in expected} == set(np.flatnonzero(mask).tolist())


def test_ids_follow_sorted_external_ids_numeric_when_integers() -> None:
    codes, values = sorted_codes(np.array(["10", "2", "10", "-1", "3"], dtype=object))
    assert values.tolist() == ["-1", "2", "3", "10"]
    assert codes.tolist() == [3, 1, 3, 0, 2]
    codes, values = sorted_codes(np.array(["b", "10", "a", "2"], dtype=object))
    assert values.tolist() == ["10", "2", "a", "b"]  # not all integers: string order
    assert codes.tolist() == [3, 0, 2, 1]


def test_id_mapping_padding_and_metadata_alignment() -> None:
    import pandas as pd

    meta = pd.DataFrame(
        {"title": ["Ten", "Two"], "year": ["2001", ""], "genres": ["Drama", ""], "text": ["", "x"]},
        index=pd.Index(["10", "2"], dtype=object),
    )
    dataset = build([("7", "10", 1), ("7", "2", 2), ("7", "5", 3), ("30", "2", 1)], meta=meta)
    assert dataset.item_ids == ["[PAD]", "2", "5", "10"]
    assert dataset.item_titles == ["", "Two", "", "Ten"]
    assert dataset.item_texts == ["", "x", "", "year: 2001; genres: Drama"]
    assert dataset.n_items == 3
    assert dataset.sequences[0].tolist() == [3, 1, 2]
    assert min(int(s.min()) for s in dataset.sequences) >= 1  # 0 stays padding


def test_leave_one_out_split_and_training_popularity() -> None:
    rows = [("u", i, t) for t, i in enumerate("abcde")] + [("v", i, t) for t, i in enumerate("aab")]
    dataset = build(rows)
    ids = {name: n for n, name in enumerate(dataset.item_ids)}
    split = dataset.split()
    u, v = dataset.user_ids.index("u"), dataset.user_ids.index("v")
    assert split.train[u].tolist() == [ids["a"], ids["b"], ids["c"]]
    assert split.valid_inputs[u].tolist() == split.train[u].tolist()
    assert split.valid_targets[u] == ids["d"]
    assert split.test_inputs[u].tolist() == [ids["a"], ids["b"], ids["c"], ids["d"]]
    assert split.test_targets[u] == ids["e"]
    assert split.train[v].tolist() == [ids["a"]]
    assert (split.valid_targets[v], split.test_targets[v]) == (ids["a"], ids["b"])
    popularity = dataset.popularity()
    assert popularity.shape == (dataset.n_items + 1,)
    assert popularity.tolist() == [0, 2, 1, 1, 0, 0]  # a, b, c, d, e: validation/test excluded


def test_no_user_left_is_an_error() -> None:
    with pytest.raises(ValueError, match="no user has 3 or more actions"):
        build([("u", "a", 1), ("u", "b", 2)])


def test_shipped_ml100k_loads_in_full(tmp_path: Path) -> None:
    dataset = load_dataset(ML100K, cache_dir=tmp_path)
    assert (dataset.n_users, dataset.n_items, dataset.n_actions) == (943, 1682, 100_000)
    assert dataset.name == "ml-100k"
    assert dataset.item_titles[1] == "Toy Story"
    assert "genres: Animation, Children's, Comedy" in dataset.item_texts[1]
    # Every user against a plain-Python reading of the file: sort by (timestamp, line).
    with (ML100K / "ml-100k.inter").open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    by_user: dict[str, list[tuple[float, int, str]]] = {}
    for line, (user, item, _, stamp) in enumerate(rows):
        by_user.setdefault(user, []).append((float(stamp), line, item))
    assert sorted(by_user, key=int) == dataset.user_ids
    for user, actions in by_user.items():
        assert external(dataset, user) == [item for _, _, item in sorted(actions)]


BEAUTY = ML100K.parent / "amazon-beauty"


def test_shipped_amazon_beauty_loads_in_full(tmp_path: Path) -> None:
    dataset = load_dataset(BEAUTY, cache_dir=tmp_path)
    assert dataset.options["fmt"] == "seqline"
    assert (dataset.n_users, dataset.n_items, dataset.n_actions) == (22_363, 12_101, 198_502)
    # Every user against a plain-Python reading of the file: the line is the sequence.
    with (BEAUTY / "Beauty.txt").open() as handle:
        lines = [line.split() for line in handle if line.strip()]
    assert [user for user, *_ in lines] == dataset.user_ids
    for user, *items in lines[::997]:
        assert external(dataset, user) == items
