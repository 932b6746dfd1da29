"""Synthetic data sets with a long-tail item popularity and sequential structure.

Items are grouped into topics; each user follows one to three topics (intents) and, step by
step, either continues from the previous item (one of its few fixed successors, which gives the
sequences learnable order), draws a popular item of the current topic, switches topic, or draws
from the whole catalog. Popularity inside and across topics follows a Zipf law, and sequence
lengths are log-normal, so both have the long tails of real logs. Generation is vectorised over
users, one step at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SYNTH_FORMATS = ("text", "atomic")


@dataclass(frozen=True)
class SynthConfig:
    users: int = 1000
    items: int = 500
    actions: int = 20_000
    zipf: float = 1.1  # popularity exponent: 1.0-1.2 is typical of rating and click logs
    topics: int = 0  # 0: about one topic per 25 items
    successors: int = 3  # fixed next items per item (the sequential signal)
    p_follow: float = 0.4  # continue from the previous item
    p_switch: float = 0.1  # move to another of the user's topics
    p_global: float = 0.1  # draw from the whole catalog
    seed: int = 0


@dataclass
class SynthData:
    users: np.ndarray  # int64 [A], external ids 1..U
    items: np.ndarray  # int64 [A], external ids 1..I
    timestamps: np.ndarray  # int64 [A], seconds
    item_topic: np.ndarray  # int64 [I + 1], topic of each external item id (row 0 unused)


def _lengths(config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Log-normal lengths, at least 3, summing exactly to `actions`."""
    if config.actions < 3 * config.users:
        raise ValueError(f"{config.actions} actions cannot give {config.users} users 3 each")
    raw = rng.lognormal(mean=0.0, sigma=1.0, size=config.users)
    spare = config.actions - 3 * config.users
    extra = np.floor(raw / raw.sum() * spare).astype(np.int64)
    leftover = spare - int(extra.sum())
    extra[rng.choice(config.users, size=leftover, replace=False)] += 1
    return extra + 3


def generate(config: SynthConfig) -> SynthData:
    rng = np.random.default_rng(config.seed)
    n_items = config.items
    n_topics = min(config.topics or max(1, min(n_items // 25, 200)), n_items)
    weight = 1.0 / np.arange(1, n_items + 1) ** config.zipf
    weight = weight[rng.permutation(n_items)]  # popular items spread over ids and topics
    topic = rng.integers(0, n_topics, size=n_items)
    topic[rng.permutation(n_items)[:n_topics]] = np.arange(n_topics)  # no empty topic

    # One CDF over items grouped by topic, each topic's mass on [t, t + 1): sampling topic t is
    # a searchsorted of t + u.
    by_topic = np.lexsort((np.arange(n_items), topic))
    sorted_topic = topic[by_topic]
    topic_mass = np.bincount(topic, weights=weight, minlength=n_topics)
    mass_before = np.cumsum(topic_mass) - topic_mass
    cdf = (
        sorted_topic
        + (np.cumsum(weight[by_topic]) - mass_before[sorted_topic]) / topic_mass[sorted_topic]
    )
    global_cdf = np.cumsum(weight) / weight.sum()
    successors = by_topic[
        np.searchsorted(cdf, topic[:, None] + rng.random((n_items, config.successors))).clip(
            0, n_items - 1
        )
    ]

    lengths = _lengths(config, rng)
    n_users = config.users
    n_intents = rng.integers(1, 4, size=n_users)
    intents = rng.choice(n_topics, size=(n_users, 3))
    current = intents[np.arange(n_users), 0]
    out = np.zeros((n_users, int(lengths.max())), dtype=np.int64)
    prev = np.full(n_users, -1)
    for step in range(int(lengths.max())):
        active = np.flatnonzero(lengths > step)
        roll = rng.random(len(active))
        switch = roll < config.p_switch
        pick = rng.integers(0, n_intents[active])
        current[active[switch]] = intents[active[switch], pick[switch]]
        choice = by_topic[
            np.searchsorted(cdf, current[active] + rng.random(len(active))).clip(0, n_items - 1)
        ]
        glob = (roll >= config.p_switch) & (roll < config.p_switch + config.p_global)
        choice[glob] = np.searchsorted(global_cdf, rng.random(int(glob.sum()))).clip(0, n_items - 1)
        follow = (rng.random(len(active)) < config.p_follow) & (prev[active] >= 0)
        nxt = successors[
            prev[active[follow]], rng.integers(0, config.successors, int(follow.sum()))
        ]
        choice[follow] = nxt
        out[active, step] = choice
        prev[active] = choice

    mask = np.arange(out.shape[1])[None, :] < lengths[:, None]
    users = np.repeat(np.arange(1, n_users + 1), lengths)
    items = out[mask] + 1
    start = rng.integers(1_500_000_000, 1_600_000_000, size=n_users)
    gaps = rng.exponential(3600.0, size=len(items)).astype(np.int64) + 1
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.cumsum(lengths) - lengths], lengths)
    timestamps = np.repeat(start, lengths) + offsets
    item_topic = np.concatenate(([0], topic))
    return SynthData(users=users, items=items, timestamps=timestamps, item_topic=item_topic)


def write_synthetic(data: SynthData, out: Path, fmt: str) -> list[Path]:
    """Write as `text` (one `user item` line per action, global time order) or `atomic`
    (`<out>/<name>.inter` + `.item`); returns the files written."""
    if fmt not in SYNTH_FORMATS:
        raise ValueError(f"unknown synthetic format {fmt!r}; choose one of {SYNTH_FORMATS}")
    order = np.lexsort((np.arange(len(data.users)), data.timestamps))
    if fmt == "text":
        out.parent.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"u": data.users[order], "i": data.items[order]})
        frame.to_csv(out, sep=" ", header=False, index=False)
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    inter = out / f"{out.name}.inter"
    frame = pd.DataFrame(
        {
            "user_id:token": data.users[order],
            "item_id:token": data.items[order],
            "timestamp:float": data.timestamps[order],
        }
    )
    frame.to_csv(inter, sep="\t", index=False)
    ids = np.arange(1, len(data.item_topic))
    items = pd.DataFrame(
        {
            "item_id:token": ids,
            "title:token_seq": [f"Synthetic item {i}" for i in ids],
            "class:token_seq": [f"topic-{t}" for t in data.item_topic[1:]],
        }
    )
    item_file = out / f"{out.name}.item"
    items.to_csv(item_file, sep="\t", index=False)
    return [inter, item_file]
