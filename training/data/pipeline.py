"""Raw interactions -> SequenceDataset: dedupe, k-core, id mapping, time order.

Everything runs on integer codes with numpy/pandas (no per-action Python objects), so a data
set of millions of actions stays within a few hundred MB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.data.dataset import PAD, SequenceDataset
from training.data.readers import RawInteractions
from training.data.tables import join_nonempty

MIN_SEQUENCE = 3  # leave-one-out needs one training action besides the two held out


def sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes 0..M-1 following the sorted distinct values (numerically when every value is
    an integer, so "2" < "10"); returns (codes, distinct values in code order)."""
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object)
    as_text = pd.Series(uniques, dtype=object).astype(str)
    if len(as_text) and as_text.str.fullmatch(r"-?\d{1,18}").all():
        order = np.argsort(as_text.astype(np.int64).to_numpy(), kind="stable")
    else:
        order = np.argsort(as_text.to_numpy(dtype=str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], as_text.to_numpy(dtype=object)[order]


def core_filter(users: np.ndarray, items: np.ndarray, k_core: int) -> np.ndarray:
    """Boolean mask of the actions kept when every user has >= max(k_core, MIN_SEQUENCE) actions
    and every item >= k_core, iterated until nothing more is removed."""
    keep = np.ones(len(users), dtype=bool)
    user_min = max(k_core, MIN_SEQUENCE)
    n_users, n_items = int(users.max(initial=-1)) + 1, int(items.max(initial=-1)) + 1
    while True:
        ok = keep & (np.bincount(users[keep], minlength=n_users)[users] >= user_min)
        if k_core > 0:
            ok &= np.bincount(items[keep], minlength=n_items)[items] >= k_core
        if ok.sum() == keep.sum():
            return keep
        keep = ok


def build_dataset(
    raw: RawInteractions,
    *,
    name: str,
    source_hash: str,
    k_core: int = 0,
    options: dict | None = None,
) -> SequenceDataset:
    """Dedupe (user, item, timestamp), filter, map ids, order each user's actions by time."""
    user_codes, _ = pd.factorize(raw.users)
    item_codes, _ = pd.factorize(raw.items)
    order = np.arange(len(user_codes), dtype=np.int64)  # file order breaks timestamp ties
    # Without timestamps file order is time, so a repeated line is a repeated action, kept.
    stamps = order if raw.timestamps is None else np.asarray(raw.timestamps)
    duplicate = pd.DataFrame({"u": user_codes, "i": item_codes, "t": stamps}).duplicated()
    keep = ~duplicate.to_numpy()
    keep[keep] = core_filter(user_codes[keep], item_codes[keep], k_core)
    if not keep.any():
        raise ValueError(
            f"{name}: no user has {max(k_core, MIN_SEQUENCE)} or more actions after filtering"
        )

    users, user_ids = sorted_codes(raw.users[keep])
    items, item_ids = sorted_codes(raw.items[keep])
    items += 1  # 0 is padding
    stamps, order = stamps[keep], order[keep]
    by_time = np.lexsort((order, stamps, users))  # last key is the primary one
    lengths = np.bincount(users, minlength=len(user_ids))
    sequences = np.split(items[by_time].astype(np.int64), np.cumsum(lengths)[:-1])

    titles, texts = _metadata(raw.items_meta, item_ids)
    return SequenceDataset(
        name=name,
        item_ids=[PAD, *item_ids.tolist()],
        user_ids=user_ids.tolist(),
        sequences=sequences,
        item_titles=["", *titles],
        item_texts=["", *texts],
        source_hash=source_hash,
        options=dict(options or {}, k_core=k_core),
    )


def _metadata(meta: pd.DataFrame | None, item_ids: np.ndarray) -> tuple[list[str], list[str]]:
    """Titles and prompt texts in internal-id order ("" for items without metadata)."""
    if meta is None:
        return [""] * len(item_ids), [""] * len(item_ids)
    rows = meta.reindex(pd.Index(item_ids, dtype=object)).fillna("")
    year, genres = rows["year"].astype(str), rows["genres"].astype(str)
    text = join_nonempty(
        [
            ("year: " + year).where(year != "", ""),
            ("genres: " + genres).where(genres != "", ""),
            rows["text"].astype(str),
        ]
    )
    return rows["title"].astype(str).tolist(), text.tolist()
