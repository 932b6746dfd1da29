"""`load_dataset`: detect the format, reuse the cache or read + process, cache the result."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.data import cache, pipeline, readers
from training.data.dataset import SequenceDataset


def load_dataset(
    path: Path | str,
    fmt: str | None = None,
    columns: Mapping[str, str] | str | None = None,
    k_core: int = 0,
    cache_dir: Path | str | None = None,
    *,
    use_cache: bool = True,
) -> SequenceDataset:
    """Load a data set folder or file (see `readers` for the formats) as a SequenceDataset.

    `columns` maps roles to column names (`{"user": "uid"}` or `"user=uid,item=iid,time=ts"`);
    `cache_dir` defaults to `INTENTREC_CACHE_DIR` (`.cache/intentrec`).
    """
    source = readers.detect_source(path, fmt)
    mapping = readers.parse_columns(columns)
    source_hash = cache.hash_files(sorted(source.files.items()))
    options = {"fmt": source.fmt, "columns": mapping, "k_core": k_core}
    entry = None
    if use_cache:
        directory = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
        entry = cache.cache_path(directory, source.name, cache.cache_key(source_hash, options))
        cached = cache.load_cached(entry)
        if cached is not None:
            return cached
    raw = readers.read_source(source, mapping)
    dataset = pipeline.build_dataset(
        raw,
        name=source.name,
        source_hash=source_hash,
        k_core=k_core,
        options={"fmt": source.fmt, "columns": mapping},
    )
    if entry is not None:
        cache.save_cached(entry, dataset)
    return dataset


def load_run_data(options: Mapping[str, Any]) -> SequenceDataset:
    """The data set a run trains on, from its options (`data`, `fmt`, `k_core`, `new_items`):
    what `train` reads and what `evaluate` and `report` must read again."""
    dataset = load_dataset(
        options["data"], fmt=options.get("fmt"), k_core=options.get("k_core", 0) or 0
    )
    if options.get("new_items"):
        dataset, _new = dataset.with_new_items(options["new_items"])
    return dataset
