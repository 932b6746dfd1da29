"""Processed-data cache: one pickle per (source files, options), so a second load skips parsing.

The key is the sha256 of the source files' bytes plus the options and `CACHE_VERSION`; entries
are written to a temporary file and renamed into place, so concurrent processes (DDP ranks,
parallel tests) never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.data.dataset import SequenceDataset

CACHE_VERSION = 1  # bump when the pipeline's output changes for the same input


class DataSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTENTREC_")

    cache_dir: Path = Path(".cache/intentrec")


def default_cache_dir() -> Path:
    return DataSettings().cache_dir


def hash_files(files: Iterable[tuple[str, Path]]) -> str:
    """sha256 over (role, content) of each file, in the order given."""
    digest = hashlib.sha256()
    for role, path in files:
        digest.update(role.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_key(source_hash: str, options: dict) -> str:
    blob = json.dumps(
        {"v": CACHE_VERSION, "source": source_hash, "options": options}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(cache_dir: Path, name: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cache_dir / f"{safe}-{key[:20]}.pkl"


def load_cached(path: Path) -> SequenceDataset | None:
    """The cached data set, or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    # A truncated, foreign or outdated entry can fail in many ways; each means "rebuild it".
    try:
        with path.open("rb") as handle:
            entry = pickle.load(handle)
        if entry.pop("version") != CACHE_VERSION:
            return None
        lengths, flat = entry.pop("lengths"), entry.pop("flat")
        return SequenceDataset(sequences=np.split(flat, np.cumsum(lengths)[:-1]), **entry)
    except Exception:
        return None


def save_cached(path: Path, dataset: SequenceDataset) -> None:
    # One flat array instead of a list of small ones: smaller and much faster to (un)pickle.
    entry = {
        "version": CACHE_VERSION,
        "name": dataset.name,
        "item_ids": dataset.item_ids,
        "user_ids": dataset.user_ids,
        "item_titles": dataset.item_titles,
        "item_texts": dataset.item_texts,
        "source_hash": dataset.source_hash,
        "options": dataset.options,
        "lengths": np.array([len(s) for s in dataset.sequences], dtype=np.int64),
        "flat": np.concatenate(dataset.sequences).astype(np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the entry from other users' runs
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(entry, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
