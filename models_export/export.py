"""RUN_DIR -> bundles/<version>/, written in a hidden temporary directory in the same parent,
renamed into place when complete, then `bundles/current` switched. A failure at any step removes
the temporary directory and leaves `current` as it was."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console

from models_export.bundle import (
    BUNDLE_FORMAT_VERSION,
    TEMP_PREFIX,
    BundleFiles,
    Catalog,
    Manifest,
    ModelInfo,
    OnnxInfo,
    new_version,
    remove_stale_temp,
    sha256_file,
    switch_current,
    write_json,
)
from models_export.index_build import IndexSettings, build_index, write_index
from models_export.onnx_export import (
    OPSET,
    ORT_LEVEL,
    ExportError,
    check_parity,
    export_onnx,
    optimize_onnx,
    parity_sequences,
)
from models_export.verify import open_encoder

PARITY_SEQUENCES = 1000


@dataclass(frozen=True)
class ExportResult:
    bundle_dir: Path
    manifest: Manifest
    current_link: Path | None


def _catalog(checkpoint: object, n_items: int) -> Catalog:
    rows = n_items + 1

    def column(name: str, fill: object) -> list:
        values = list(getattr(checkpoint, name, None) or [])
        if values and len(values) != rows:
            raise ExportError(f"checkpoint {name} has {len(values)} rows, expected {rows}")
        return values or [fill] * rows

    item_ids = column("item_ids", "")
    if not any(item_ids):
        raise ExportError("checkpoint has no item_ids (internal -> external id map)")
    return Catalog(
        external_ids=[str(i) for i in item_ids],
        titles=[str(t) for t in column("item_titles", "")],
        texts=[str(t) for t in column("item_texts", "")],
        popularity=np.asarray(column("item_popularity", 0), dtype=np.int64),
    )


def export_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    switch: bool = True,
    progress: bool = False,
    index_settings: IndexSettings | None = None,
    n_parity: int = PARITY_SEQUENCES,
    now: datetime | None = None,
) -> ExportResult:
    """Export the run's checkpoint to `out/<version>/` and (by default) make it `current`."""
    from training.checkpoint import load_model

    console = Console(quiet=not progress, stderr=True)
    step: Callable[[str], None] = lambda text: console.log(text)  # noqa: E731
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temp(out):
        step(f"removed {stale.name}, left by an export that was killed")

    model, checkpoint = load_model(Path(run_dir))
    config = model.config
    n_items = config.n_items
    step(f"loaded {config.arch} from {run_dir} ({n_items} items, K={model.n_intents})")
    catalog = _catalog(checkpoint, n_items)

    work = out / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    scratch = work / ".scratch"  # the raw graph; not part of the bundle
    try:
        scratch.mkdir(parents=True)
        files = BundleFiles(work)
        step("exporting the encoder to ONNX")
        export_onnx(model, scratch / "encoder.raw.onnx")
        optimize_onnx(scratch / "encoder.raw.onnx", files.encoder)
        shutil.rmtree(scratch)

        sequences = parity_sequences(checkpoint.sample_sequences, n_parity)
        step(f"checking ONNX Runtime against torch on {len(sequences)} sequences")
        parity = check_parity(model, open_encoder(files.encoder), sequences)

        item_vectors = model.item_embeddings().detach().cpu().numpy().astype(np.float32)
        np.save(files.items, item_vectors)
        step("building the item index")
        built = build_index(item_vectors, parity.user_vectors, index_settings)
        write_index(built.index, files.index)
        write_json(files.catalog, catalog.to_json())
        np.savez(files.samples, item_seq=parity.sample_inputs, user_vectors=parity.sample_outputs)

        checksums = {name: sha256_file(work / name) for name in BundleFiles.CONTENT}
        version = new_version(checksums, now)
        manifest = Manifest(
            format_version=BUNDLE_FORMAT_VERSION,
            version=version,
            created_at=now or datetime.now(UTC),
            model=ModelInfo(
                arch=config.arch,
                dim=config.dim,
                intents=model.n_intents,
                max_len=config.max_len,
                n_items=n_items,
            ),
            data=dict(checkpoint.data_info),
            metrics=dict(checkpoint.metrics),
            onnx=OnnxInfo(
                opset=OPSET,
                parity_max_abs_diff=parity.max_abs_diff,
                n_parity_sequences=parity.n_sequences,
                optimization=ORT_LEVEL,
            ),
            index=built.info,
            files=checksums,
        )
        write_json(files.manifest, manifest.model_dump(mode="json"))
        final = out / version
        if final.exists():
            raise ExportError(f"{final} already exists")
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    step(f"wrote {final}")
    link = switch_current(out, final) if switch else None
    return ExportResult(bundle_dir=final, manifest=manifest, current_link=link)
