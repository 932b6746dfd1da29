"""Training examples for the LLM ranker, made by the bundle's own retriever.

For a training user, a cut point splits the *training* part of the sequence (everything before
the validation item: validation and test items are never read) into a history and the next
item. The served model encodes the history and retrieves as `/recommend` does (same N, seen
items excluded); the example is kept when the next item lands among the positions the LLM
reorders (fixed_top + 1 .. N), which is the only place refine can move it. The prompt is built
by serving/refine/prompt.py, the code the server uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.model import ServedModel
from serving.pipeline.history import encoder_input
from serving.pipeline.ranking import fetch_size, filter_candidates
from serving.refine.contract import Candidate
from serving.refine.prompt import Prompt, refine_prompt
from serving.refine.settings import RefineSettings


@dataclass(frozen=True)
class RankerExample:
    user: str
    history: list[Candidate]  # what the server hands the refiner: the last max_len items
    tail: list[Candidate]  # the candidates the LLM reorders, in encoder order
    answer: int  # position of the true next item in `tail`

    def prompt(self, settings: RefineSettings) -> Prompt:
        return refine_prompt(settings, self.history, self.tail)


def cut_points(length: int, cuts: int) -> list[int]:
    """The last `cuts` positions c (1 <= c < length) of a training sequence: history = seq[:c],
    next item = seq[c]. The most recent cut is nearest to what the server sees."""
    return list(range(max(1, length - cuts), length))


def _candidate(model: ServedModel, item: int) -> Candidate:
    return Candidate(item, model.external_ids[item], model.titles[item], model.texts[item], 0.0)


def build_examples(
    model: ServedModel,
    users: Sequence[str],
    train_sequences: Sequence[Sequence[str]],
    settings: RefineSettings,
    *,
    cuts_per_user: int = 1,
) -> tuple[list[RankerExample], dict[str, int]]:
    """Examples from each user's training sequence (external item ids, validation and test items
    already removed), and counts: cuts tried, next item outside the retrieved N, inside the fixed
    top, kept."""
    n, fixed = settings.refine_candidates, settings.refine_fixed_top
    counts = {"cuts": 0, "outside_candidates": 0, "in_fixed_top": 0, "kept": 0}
    examples = []
    for user, sequence in zip(users, train_sequences, strict=True):
        ids = np.asarray([model.known.get(item, 0) for item in sequence], dtype=np.int64)
        ids = ids[ids > 0]
        for cut in cut_points(len(ids), cuts_per_user):
            counts["cuts"] += 1
            history, target = ids[:cut], int(ids[cut])
            excluded = set(history.tolist())
            row = encoder_input(history, model.max_len)[None, :]
            retrieved = model.encode_retrieve(row, fetch_size(n, len(excluded), model.n_items))
            ranked, _ = filter_candidates(retrieved.ids[0], retrieved.scores[0], excluded)
            top = ranked[:n].tolist()
            if target not in top:
                counts["outside_candidates"] += 1
                continue
            if top.index(target) < fixed:
                counts["in_fixed_top"] += 1
                continue
            tail = top[fixed:]
            examples.append(
                RankerExample(
                    user=user,
                    history=[_candidate(model, i) for i in history[-model.max_len :].tolist()],
                    tail=[_candidate(model, i) for i in tail],
                    answer=tail.index(target),
                )
            )
            counts["kept"] += 1
    return examples, counts
