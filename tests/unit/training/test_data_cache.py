"""The processed-data cache: a second load does not parse; changed input or options miss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import load_dataset, readers

ROWS = "user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
    f"{u}\t{i}\t{t}\n" for u in range(4) for t, i in enumerate([1, 2, 3, u + 4])
)


@pytest.fixture
def inter(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "tiny.inter"
    path.parent.mkdir()
    path.write_text(ROWS)
    return path


def counting_reader(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = readers.read_source

    def spy(source, columns=None):
        calls.append(source.fmt)
        return real(source, columns)

    monkeypatch.setattr(readers, "read_source", spy)
    return calls


def test_second_load_does_not_call_the_reader(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_reader(monkeypatch)
    cache = tmp_path / "cache"
    first = load_dataset(inter, cache_dir=cache)
    second = load_dataset(inter, cache_dir=cache)
    assert calls == ["atomic"]
    assert len(list(cache.glob("*.pkl"))) == 1
    assert second.item_ids == first.item_ids and second.user_ids == first.user_ids
    assert all(np.array_equal(a, b) for a, b in zip(first.sequences, second.sequences, strict=True))
    assert second.source_hash == first.source_hash and second.options == first.options


def test_changed_options_or_content_miss_the_cache(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_reader(monkeypatch)
    cache = tmp_path / "cache"
    base = load_dataset(inter, cache_dir=cache)
    load_dataset(inter, cache_dir=cache, k_core=2)
    assert len(calls) == 2
    inter.write_text(ROWS + "9\t1\t1\n9\t2\t2\n9\t3\t3\n")
    changed = load_dataset(inter, cache_dir=cache)
    assert len(calls) == 3
    assert changed.source_hash != base.source_hash and changed.n_users == base.n_users + 1


def test_unreadable_cache_entry_is_rebuilt(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_reader(monkeypatch)
    cache = tmp_path / "cache"
    load_dataset(inter, cache_dir=cache)
    (entry,) = cache.glob("*.pkl")
    entry.write_bytes(b"truncated")
    assert load_dataset(inter, cache_dir=cache).n_users == 4
    assert len(calls) == 2


def test_cache_dir_comes_from_the_environment(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTENTREC_CACHE_DIR", str(tmp_path / "from-env"))
    load_dataset(inter)
    assert len(list((tmp_path / "from-env").glob("tiny-*.pkl"))) == 1


def test_use_cache_false_writes_nothing(
    inter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTENTREC_CACHE_DIR", str(tmp_path / "unused"))
    load_dataset(inter, use_cache=False)
    assert not (tmp_path / "unused").exists()
