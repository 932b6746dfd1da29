"""`intentrec bench text-items RUN`: how items nobody interacted with in training get ranked,
with and without the text map of `export --with-text-items`.

Train with `--new-items 0.1` so that a tenth of the catalog is new, then this measures, on the
test users whose last item is one nobody interacted with in training, how often that item is
in the user's top 100 (history masked, as `/recommend` serves): with the untrained rows, with
the text-mapped rows, and by popularity. It also reports the map's own check on held-out known
items (the figure the export writes into the manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TOP = 100


def _hit_rate(scores: np.ndarray, histories: list[np.ndarray], targets: np.ndarray) -> float:
    scores = scores.copy()
    scores[:, 0] = -np.inf
    rows = np.arange(len(targets))
    target_scores = scores[rows, targets].copy()
    for row, history in enumerate(histories):
        scores[row, history] = -np.inf
    scores[rows, targets] = target_scores
    above = (scores > target_scores[:, None]).sum(axis=1)
    return float((above < TOP).mean())


def bench_text_items(run_dir: Path) -> dict[str, Any]:
    import torch

    from models_export.export import catalog_from_checkpoint, place_text_items
    from training.checkpoint import load_model
    from training.data import load_run_data
    from training.sequences import left_pad

    model, checkpoint = load_model(Path(run_dir))
    dataset = load_run_data(checkpoint.train_config)
    split = dataset.split()
    popularity = dataset.popularity()
    catalog = catalog_from_checkpoint(checkpoint, model.config.n_items)
    untrained = model.item_embeddings().detach().cpu().numpy().astype(np.float32)
    mapped = untrained.copy()
    catalog, info = place_text_items(catalog, mapped)

    targets = split.test_targets
    picked = np.flatnonzero(popularity[targets] == 0)
    if len(picked) == 0:
        raise ValueError(
            f"{run_dir}: no test user's last item is new to training; "
            "train with --new-items 0.1 to hold items out"
        )
    histories = [split.test_inputs[i] for i in picked]
    with torch.inference_mode():
        users = model.encode(torch.from_numpy(left_pad(histories, model.config.max_len)))
    users_np = users.float().numpy()  # (U, K, D)

    def scores_with(items: np.ndarray) -> np.ndarray:
        return (users_np @ items.T).max(axis=1)

    by_popularity = np.broadcast_to(popularity.astype(np.float64), (len(picked), len(popularity)))
    picked_targets = targets[picked]
    return {
        "run": str(run_dir),
        "new_items_option": checkpoint.train_config.get("new_items", 0.0),
        "items_placed_by_text": info.count,
        "test_users_with_a_new_target": len(picked),
        f"hit@{TOP}_untrained_rows": _hit_rate(scores_with(untrained), histories, picked_targets),
        f"hit@{TOP}_text_mapped": _hit_rate(scores_with(mapped), histories, picked_targets),
        f"hit@{TOP}_popularity": _hit_rate(by_popularity, histories, picked_targets),
        "map_held_out_items": info.held_out,
        "map_recall@100": info.recall_at_100,
        "map_popularity_recall@100": info.popularity_recall_at_100,
    }
