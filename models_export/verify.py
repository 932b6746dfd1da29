"""`intentrec bundle verify`: a bundle is complete, uncorrupted and still computes what torch did.
Torch-free (ONNX Runtime and FAISS only), so it runs where serving runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models_export.bundle import (
    BundleError,
    BundleFiles,
    VerifyReport,
    check_files,
    load_catalog,
    load_item_vectors,
    load_manifest,
    read_index,
    resolve_bundle,
)

PARITY_TOLERANCE = 1e-4


def open_encoder(path: Path, threads: int | None = None, providers: list[str] | None = None) -> Any:
    """An ONNX Runtime session over a bundle's encoder; a damaged graph is a `BundleError`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(path), options, providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
        raise BundleError(
            path, f"ONNX Runtime cannot load it ({str(exc).splitlines()[0]})"
        ) from exc


def verify_bundle(path: Path | str, tolerance: float = PARITY_TOLERANCE) -> VerifyReport:
    """Checksums and schema, then load ONNX Runtime and FAISS and re-run the stored samples.

    Raises `BundleError` naming the first file found missing, corrupted or inconsistent.
    """
    from models_export.index import search_intents

    root = resolve_bundle(path)
    manifest = load_manifest(root)
    files = BundleFiles(root)
    checked = check_files(root, manifest)
    model = manifest.model
    catalog = load_catalog(root, model.n_items)
    items = load_item_vectors(root, model)
    index = read_index(files.index, manifest.index)
    session = open_encoder(files.encoder)

    try:
        with np.load(files.samples, allow_pickle=False) as samples:
            inputs = samples["item_seq"]
            reference = samples["user_vectors"]
    except (OSError, ValueError, KeyError) as exc:
        raise BundleError(files.samples, f"unreadable samples ({exc!r})") from exc
    expected_shape = (len(inputs), model.intents, model.dim)
    if reference.shape != expected_shape:
        raise BundleError(files.samples, f"reference {reference.shape}, expected {expected_shape}")
    try:
        (got,) = session.run([manifest.onnx.output_name], {manifest.onnx.input_name: inputs})
    except Exception as exc:  # ORT runtime failures have no common base type
        raise BundleError(files.encoder, f"fails on the stored samples ({exc})") from exc
    if got.shape != expected_shape:
        raise BundleError(files.encoder, f"outputs {got.shape}, expected {expected_shape}")
    diff = float(np.abs(got - reference).max()) if len(inputs) else 0.0
    if not diff <= tolerance:
        raise BundleError(files.encoder, f"parity {diff:.3g} > {tolerance:g} on stored samples")

    # The index must hold the same vectors as items.npy: the top item of a sample user agrees.
    if len(inputs):
        _, ids = search_intents(index, got[:1], 1)
        top = int(ids[0, 0])
        exact = int(np.argmax((got[0] @ items[1:].T).max(axis=0))) + 1
        if top != exact and manifest.index.kind == "flat":
            raise BundleError(files.index, f"top item {top} differs from items.npy's {exact}")
    if len(catalog) != len(items):
        raise BundleError(files.catalog, f"{len(catalog)} rows for {len(items)} item vectors")
    return VerifyReport(
        bundle_dir=root,
        version=manifest.version,
        files_checked=[BundleFiles.MANIFEST, *checked],
        parity_max_abs_diff=diff,
        n_parity_sequences=len(inputs),
        index_kind=manifest.index.kind,
        index_ntotal=int(index.ntotal),
    )
