"""Where the served model really runs: what ONNX Runtime loaded and where the index landed.

ONNX Runtime falls back to the CPU on its own when the CUDA provider cannot load (missing CUDA
libraries, no GPU), and FAISS without a GPU build keeps the index on the CPU. `place` turns
`INTENTREC_DEVICE=cuda` into a start-up error naming what is missing, lets `auto` fall back with
one warning, and reports what was loaded, never what was asked for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
Requested = Literal["auto", "cpu", "cuda"]


class DeviceError(RuntimeError):
    """`INTENTREC_DEVICE=cuda` cannot be honoured; the message names what is missing."""


@dataclass(frozen=True)
class ServedDevice:
    encoder: str  # "cuda" | "cpu": ONNX Runtime's first loaded provider
    index: str  # "cuda" | "cpu": where the FAISS index was placed
    providers: tuple[str, ...]  # as `session.get_providers()` reports them
    index_type: str  # the FAISS class searched, e.g. IndexFlatIP or GpuIndexFlatIP

    @property
    def name(self) -> str:
        """`cuda`, `cpu`, or `mixed` (encoder and index apart)."""
        return self.encoder if self.encoder == self.index else "mixed"

    def describe(self) -> str:
        return (
            f"encoder on {self.encoder} ({', '.join(self.providers)}), "
            f"index on {self.index} ({self.index_type})"
        )


def requested_providers(requested: Requested, available: list[str]) -> list[str]:
    """The providers to ask ONNX Runtime for; `cuda` without the CUDA build is an error."""
    if requested == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if requested == "cuda":
        raise DeviceError(
            "INTENTREC_DEVICE=cuda, but this onnxruntime has no CUDA provider "
            f"(available: {', '.join(available)}): install the `gpu` extra (onnxruntime-gpu), "
            "or set INTENTREC_DEVICE=auto or cpu"
        )
    return [CPU_PROVIDER]


def encoder_device(requested: Requested, asked: list[str], loaded: list[str]) -> str:
    """Where the session runs, from the providers it loaded; a CUDA provider asked for but not
    loaded is an error under `cuda` and one warning under `auto`."""
    if CUDA_PROVIDER in loaded:
        return "cuda"
    if CUDA_PROVIDER in asked:
        why = (
            "ONNX Runtime did not load its CUDA provider (a CUDA or cuDNN library it needs is "
            f"missing, or no GPU is visible); loaded: {', '.join(loaded)}"
        )
        if requested == "cuda":
            raise DeviceError(f"INTENTREC_DEVICE=cuda, but {why}")
        log.warning("encoder falls back to the CPU: %s", why)
    return "cpu"


def place_index(index: Any, requested: Requested, encoder: str) -> tuple[Any, str]:
    """The index on the GPU when `cuda` is asked (an error naming why it cannot be) or when
    `auto` finds one; under `auto` a CPU index beside a CUDA encoder is one warning."""
    from models_export.index import to_device

    if requested == "cuda":
        try:
            return to_device(index, "cuda")
        except RuntimeError as exc:
            raise DeviceError(f"INTENTREC_DEVICE=cuda, but {exc}") from exc
    placed, where = to_device(index, "auto" if requested == "auto" else "cpu")
    if requested == "auto" and encoder == "cuda" and where == "cpu":
        log.warning("the index stays on the CPU beside a CUDA encoder (no faiss GPU build or GPU)")
    return placed, where


def index_type(index: Any) -> str:
    """The FAISS class searched, with the index an id map wraps: IndexIDMap(GpuIndexFlatIP)."""
    import faiss

    outer = faiss.downcast_index(index)
    name = type(outer).__name__
    if isinstance(outer, faiss.IndexIDMap):
        name += f"({type(faiss.downcast_index(outer.index)).__name__})"
    return name
