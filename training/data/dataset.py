"""The processed data set every trainer and evaluator reads, and its leave-one-out split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

PAD = "[PAD]"


@dataclass
class Split:
    """Leave-one-out: last action = test target, second last = validation target."""

    train: list[np.ndarray]  # each user's sequence without the last two actions
    valid_inputs: list[np.ndarray]  # = train
    valid_targets: np.ndarray  # int64 [U]: second last action
    test_inputs: list[np.ndarray]  # all but the last action
    test_targets: np.ndarray  # int64 [U]: last action


@dataclass
class SequenceDataset:
    """Users' item sequences in internal ids: 0 = padding, items 1..N.

    Internal ids follow the sorted external ids (numerically when every id is an integer, as
    strings otherwise), so ml-100k's item "1" is internal 1; users are ordered the same way.
    """

    name: str
    item_ids: list[str]  # index = internal id; item_ids[0] == PAD
    user_ids: list[str]  # index = user index
    sequences: list[np.ndarray]  # int64 per user, time order (ties: file order)
    item_titles: list[str]  # "" when unknown; index = internal id
    item_texts: list[str]  # "year: 1995; genres: Comedy, Drama" (for the LLM prompt)
    source_hash: str
    options: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        """N, padding excluded."""
        return len(self.item_ids) - 1

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_actions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def split(self) -> Split:
        train = [s[:-2] for s in self.sequences]
        return Split(
            train=train,
            valid_inputs=train,
            valid_targets=np.array([s[-2] for s in self.sequences], dtype=np.int64),
            test_inputs=[s[:-1] for s in self.sequences],
            test_targets=np.array([s[-1] for s in self.sequences], dtype=np.int64),
        )

    def with_new_items(self, share: float, seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
        """The data set as if a random `share` of the catalog had arrived after training: their
        actions leave every user's training part (validation and test keep them), so nothing
        trains their embedding. The same share and seed always pick the same items, whatever
        the training seed. Returns the data set and the new items' internal ids, sorted."""
        if not 0.0 < share < 1.0:
            raise ValueError(f"new_items must be in (0, 1), got {share}")
        rng = np.random.default_rng(seed)
        count = max(1, round(share * self.n_items))
        new = np.sort(rng.choice(np.arange(1, self.n_items + 1), count, replace=False))
        sequences = [
            np.concatenate([s[:-2][~np.isin(s[:-2], new)], s[-2:]]) if len(s) > 2 else s
            for s in self.sequences
        ]
        options = self.options | {"new_items": share}
        return replace(self, sequences=sequences, options=options), new

    def popularity(self) -> np.ndarray:
        """int64 [N + 1]: how often each item occurs in the training part (row 0 = 0)."""
        train = [s[:-2] for s in self.sequences]
        flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=self.n_items + 1).astype(np.int64)

    def stats(self) -> dict:
        """Sizes and sequence-length percentiles (the figures `intentrec data stats` prints)."""
        lengths = np.array([len(s) for s in self.sequences], dtype=np.int64)
        p50, p90, p99 = (float(np.percentile(lengths, q)) for q in (50, 90, 99))
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "actions": int(lengths.sum()),
            "length_p50": p50,
            "length_p90": p90,
            "length_p99": p99,
            "length_max": int(lengths.max()) if len(lengths) else 0,
            "source_hash": self.source_hash,
        }
