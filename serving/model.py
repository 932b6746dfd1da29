"""The served model: a loaded bundle with its ONNX Runtime session and FAISS index.

Immutable once built; a reload builds a new one and swaps the reference, so a request that took
the old one finishes on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models_export.bundle import BundleFiles, LoadedBundle, load_bundle
from serving.device import (
    ServedDevice,
    encoder_device,
    index_type,
    place_index,
    requested_providers,
)
from serving.settings import Settings


@dataclass(frozen=True, slots=True)
class EncodeResult:
    scores: np.ndarray  # float32 (fetch,)
    ids: np.ndarray  # int64 (fetch,), -1 where there are fewer results
    encode_ms: float  # of the whole batch this request rode in
    retrieve_ms: float
    batch_size: int
    user_vectors: np.ndarray  # float32 (K, D)
    weights: np.ndarray | None  # float32 (K, W) history weights; None for an older bundle


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoder + index call over a batch of rows."""

    scores: np.ndarray  # (B, fetch)
    ids: np.ndarray  # (B, fetch)
    encode_ms: float
    retrieve_ms: float
    user_vectors: np.ndarray  # (B, K, D)
    weights: np.ndarray | None  # (B, K, W); None for a bundle without the output

    def row(self, i: int, fetch: int, batch_size: int) -> EncodeResult:
        return EncodeResult(
            self.scores[i, :fetch],
            self.ids[i, :fetch],
            self.encode_ms,
            self.retrieve_ms,
            batch_size,
            self.user_vectors[i],
            None if self.weights is None else self.weights[i],
        )


class ServedModel:
    def __init__(
        self, bundle: LoadedBundle, session: Any, index: Any, device: ServedDevice
    ) -> None:
        manifest = bundle.manifest
        self.root: Path = bundle.root
        self.version: str = manifest.version
        self.arch: str = manifest.model.arch
        self.max_len: int = manifest.model.max_len
        self.n_items: int = manifest.model.n_items
        self.intents: int = manifest.model.intents
        self.device = device
        self.single_ms = float("inf")  # one request's encode + retrieve, measured at load
        self.session = session
        self.index = index
        self._input = manifest.onnx.input_name
        self._output = manifest.onnx.output_name
        # The history weights come with every call: the graph computes them anyway, fetching
        # them costs a copy of (B, K, W) floats, and `explain` then needs no second encode.
        self._fetch = [manifest.onnx.output_name] + (
            [manifest.onnx.weights_name] if manifest.onnx.weights_name else []
        )
        # Memory-mapped: explanations read a few rows; the index holds the vectors it searches.
        self._item_vectors: np.ndarray = np.load(BundleFiles(bundle.root).items, mmap_mode="r")
        catalog = bundle.catalog
        self.external_ids: list[str] = catalog.external_ids
        self.titles: list[str] = catalog.titles
        self.texts: list[str] = catalog.texts
        self.popularity: np.ndarray = catalog.popularity
        self.from_text: frozenset[int] = catalog.from_text
        self.known: dict[str, int] = catalog.internal_ids()
        order = np.argsort(-catalog.popularity[1:], kind="stable") + 1
        self.popular_order: np.ndarray = order.astype(np.int64)

    def item_vectors(self, ids: list[int]) -> np.ndarray:
        return np.asarray(self._item_vectors[ids])

    def encode_retrieve(self, rows: np.ndarray, fetch: int) -> Encoded:
        """(B, max_len) int64 -> the top `fetch` of each row, its user vectors and weights.

        Called from the batcher's worker thread; ONNX Runtime and FAISS release the GIL.
        """
        from models_export.index import search_intents

        t0 = time.perf_counter()
        outputs = self.session.run(self._fetch, {self._input: rows})
        vectors = outputs[0]  # (B, K, D)
        t1 = time.perf_counter()
        if vectors.shape[1] == 1:
            # One intent: the index's own ranking is already the merged one.
            scores, ids = self.index.search(np.ascontiguousarray(vectors[:, 0, :]), fetch)
        else:
            scores, ids = search_intents(self.index, vectors, fetch)
        t2 = time.perf_counter()
        weights = outputs[1] if len(outputs) == 2 else None
        return Encoded(scores, ids, (t1 - t0) * 1000.0, (t2 - t1) * 1000.0, vectors, weights)


WARM_UP_CALLS = 20


def load_model(path: Path | str, settings: Settings) -> ServedModel:
    """Load and warm up a bundle (blocking: call it off the event loop)."""
    import onnxruntime as ort

    from models_export.index import set_threads

    bundle = load_bundle(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.ort_intra_threads
    options.inter_op_num_threads = settings.ort_inter_threads
    asked = requested_providers(settings.device, ort.get_available_providers())
    session = ort.InferenceSession(str(bundle.encoder_path), options, providers=asked)
    loaded = session.get_providers()
    encoder = encoder_device(settings.device, asked, loaded)
    set_threads(1)  # a few queries per batch: a thread team costs more than it gains
    index, where = place_index(bundle.index, settings.device, encoder)
    device = ServedDevice(encoder, where, tuple(loaded), index_type(index))
    model = ServedModel(bundle, session, index, device)
    warm = np.zeros((1, model.max_len), dtype=np.int64)
    warm[0, -model.max_len // 2 :] = model.popular_order[: model.max_len // 2]
    times = []
    for _ in range(WARM_UP_CALLS):
        t0 = time.perf_counter()
        model.encode_retrieve(warm, 50)
        times.append((time.perf_counter() - t0) * 1000.0)
    model.single_ms = float(np.median(times))
    return model
