"""RUN_DIR -> bundles/<version>/, written in a hidden temporary directory in the same parent,
renamed into place when complete, then `bundles/current` switched. A failure at any step removes
the temporary directory and leaves `current` as it was."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
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
    TextItemsInfo,
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
    WEIGHTS_NAME,
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


def catalog_from_checkpoint(checkpoint: object, n_items: int) -> Catalog:
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


def place_text_items(catalog: Catalog, item_vectors: np.ndarray) -> tuple[Catalog, TextItemsInfo]:
    """Overwrite, in place, the rows of items with no training interaction and some text by
    their text-mapped vectors; the catalog comes back with those rows flagged."""
    from models_export.text_items import (
        TEXT_MODEL,
        embed_texts,
        map_quality,
        text_item_vectors,
    )

    texts = [
        ". ".join(part for part in (title, text) if part)
        for title, text in zip(catalog.titles, catalog.texts, strict=True)
    ]
    has_text = np.array([bool(t) for t in texts])
    has_text[0] = False
    trained = catalog.popularity > 0
    known = np.flatnonzero(has_text & trained)
    new = np.flatnonzero(has_text & ~trained)
    if not has_text.any():
        raise ExportError("--with-text-items: the catalog has no item titles or texts")
    text = embed_texts(texts)
    quality = map_quality(text, item_vectors, known, catalog.popularity)
    if len(new):
        item_vectors[new] = text_item_vectors(text, item_vectors, known, new, quality.ridge)
    info = TextItemsInfo(
        text_model=TEXT_MODEL,
        count=len(new),
        held_out=quality.held_out,
        recall_at_100=quality.recall_at_100,
        popularity_recall_at_100=quality.popularity_recall_at_100,
        ridge=quality.ridge,
    )
    return replace(catalog, from_text=frozenset(new.tolist())), info


def export_run(
    run_dir: Path | str,
    out: Path | str,
    *,
    switch: bool = True,
    progress: bool = False,
    index_settings: IndexSettings | None = None,
    n_parity: int = PARITY_SEQUENCES,
    now: datetime | None = None,
    with_text_items: bool = False,
) -> ExportResult:
    """Export the run's checkpoint to `out/<version>/` and (by default) make it `current`.

    `with_text_items`: items nobody interacted with in training get a vector mapped from their
    text (models_export/text_items.py) instead of their untrained row."""
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
    catalog = catalog_from_checkpoint(checkpoint, n_items)

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
        text_items = None
        if with_text_items:
            step("placing items without training interactions by their text (MiniLM)")
            catalog, text_items = place_text_items(catalog, item_vectors)
            step(
                f"{text_items.count} items placed by text; on {text_items.held_out} held-out "
                f"known items the map's recall@100 is {text_items.recall_at_100:.3f} "
                f"(popularity {text_items.popularity_recall_at_100:.3f})"
            )
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
                weights_name=WEIGHTS_NAME,
                parity_max_abs_diff=parity.max_abs_diff,
                n_parity_sequences=parity.n_sequences,
                optimization=ORT_LEVEL,
            ),
            index=built.info,
            files=checksums,
            text_items=text_items,
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
