"""torch encoder -> ONNX graph (dynamic batch and sequence), ONNX Runtime-optimised copy, parity.

The graph maps `item_seq` int64 (batch, seq), left-padded with 0, to `user_vectors` float32
(batch, K, D) and `history_weights` float32 (batch, K, min(seq, max_len)): how much each of the
last positions weighs in each intent, what `/recommend` with `explain` reads. Parity is measured
between torch eager and ONNX Runtime running the *stored* (optimised) graph, on real sequences,
in batches of varying sequence length.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.models.base import SequenceEncoder
from training.sequences import left_pad

INPUT_NAME = "item_seq"
OUTPUT_NAME = "user_vectors"
WEIGHTS_NAME = "history_weights"
OPSET = 18
PARITY_TOLERANCE = 1e-4
# "extended" fusions (attention, LayerNorm, GELU) exist for the CPU and CUDA providers alike;
# "all" would add CPU-specific memory layouts to the stored graph.
ORT_LEVEL = "extended"


class ExportError(RuntimeError):
    pass


class _Explain(nn.Module):
    """Exports `explain` (`encode` and its weights; not `forward`, which subclasses may use for
    training), or `encode` alone without the weights."""

    def __init__(self, model: SequenceEncoder, with_weights: bool) -> None:
        super().__init__()
        self.model = model
        self.with_weights = with_weights

    def forward(self, item_seq: torch.Tensor) -> Any:
        if self.with_weights:
            return self.model.explain(item_seq)
        return self.model.encode(item_seq)


def export_onnx(
    model: SequenceEncoder, path: Path, opset: int = OPSET, *, with_weights: bool = True
) -> Path:
    """Write the raw (unoptimised) ONNX graph of `model.explain` to `path`; `with_weights=False`
    leaves the history weights out (`bench encode` measures what they cost)."""
    model.eval()
    max_len = model.config.max_len
    example = torch.randint(1, model.config.n_items + 1, (2, max_len), dtype=torch.int64)
    batch = torch.export.Dim("batch", min=1)
    seq = torch.export.Dim("seq", min=1)
    # The exporter's notes (torchvision absent, folding skipped, ...) would hide real errors.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Explain(model, with_weights),
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME, WEIGHTS_NAME] if with_weights else [OUTPUT_NAME],
                opset_version=opset,
                dynamic_shapes={"item_seq": {0: batch, 1: seq}},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.setLevel(level)
    return path


def optimize_onnx(src: Path, dst: Path, level: str = ORT_LEVEL) -> Path:
    """Save ONNX Runtime's optimised form of `src` to `dst` (what serving loads)."""
    import onnxruntime as ort

    levels = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = levels[level]
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return dst


def parity_sequences(
    samples: Sequence[Sequence[int]], n: int = 1000, seed: int = 0
) -> list[np.ndarray]:
    """`n` real sequences: the samples, extended when fewer with random windows of them (still
    real item orders, of other lengths)."""
    pool = [np.asarray(s, dtype=np.int64) for s in samples if len(s) > 0]
    if not pool:
        raise ExportError("the checkpoint holds no sample sequences to check parity on")
    out = pool[:n]
    rng = np.random.default_rng(seed)
    while len(out) < n:
        seq = pool[int(rng.integers(len(pool)))]
        start = int(rng.integers(len(seq)))
        stop = int(rng.integers(start + 1, len(seq) + 1))
        out.append(seq[start:stop])
    return out


def torch_encode(model: SequenceEncoder, item_seq: np.ndarray) -> np.ndarray:
    return torch_explain(model, item_seq)[0]


def torch_explain(model: SequenceEncoder, item_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        vectors, weights = model.explain(torch.from_numpy(item_seq))
        return vectors.numpy(), weights.numpy()


@dataclass(frozen=True)
class ParityResult:
    max_abs_diff: float
    n_sequences: int
    sample_inputs: np.ndarray  # (S, max_len) int64, for `bundle verify`
    sample_outputs: np.ndarray  # (S, K, D) float32 torch reference
    user_vectors: np.ndarray  # (n, K, D) float32 torch outputs of every parity sequence


def check_parity(
    model: SequenceEncoder,
    session: object,
    sequences: Sequence[np.ndarray],
    batch_size: int = 100,
    n_samples: int = 256,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityResult:
    """Compare torch and ONNX Runtime on every sequence (user vectors and history weights) and
    raise above `tolerance`.

    Sequences are sorted by length and each batch is padded only to its longest member, so the
    graph runs at many sequence lengths (the dynamic axis), including ones past `max_len`.
    """
    order = np.argsort([len(s) for s in sequences], kind="stable")
    worst = 0.0
    outputs: list[np.ndarray] = [np.empty(0)] * len(sequences)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        length = max(1, max(len(sequences[r]) for r in rows))
        batch = left_pad([sequences[r] for r in rows], length)
        expected, expected_weights = torch_explain(model, batch)
        got, got_weights = session.run(  # type: ignore[attr-defined]
            [OUTPUT_NAME, WEIGHTS_NAME], {INPUT_NAME: batch}
        )
        worst = max(
            worst,
            float(np.abs(got - expected).max()),
            float(np.abs(got_weights - expected_weights).max()),
        )
        for row, vectors in zip(rows, expected, strict=True):
            outputs[row] = vectors
    if not worst <= tolerance:
        raise ExportError(
            f"ONNX Runtime differs from torch by {worst:.3g} (> {tolerance:g}) on "
            f"{len(sequences)} sequences"
        )
    max_len = model.config.max_len
    sample_inputs = left_pad(list(sequences[:n_samples]), max_len)
    return ParityResult(
        max_abs_diff=worst,
        n_sequences=len(sequences),
        sample_inputs=sample_inputs,
        sample_outputs=torch_encode(model, sample_inputs),
        user_vectors=np.stack(outputs).astype(np.float32),
    )
