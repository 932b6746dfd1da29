"""The bundle format: the one definition of what crosses from offline to online. Torch-free.

A bundle is a directory `bundles/<version>/` holding the files named in `BundleFiles` and a
`manifest.json` with the sha256 of every other file. `bundles/current` is a relative symlink to
the served version, switched atomically (new link + `os.replace`). Readers resolve `current`
once and then read only inside the version directory, which never changes after its rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

BUNDLE_FORMAT_VERSION = 1
CURRENT_LINK = "current"
TEMP_PREFIX = ".tmp-"  # hidden, so listings of versions never show a bundle being written
# An export takes minutes at most: a temp folder this old was left by a killed one.
STALE_TEMP_AGE_S = 24 * 3600


class BundleError(RuntimeError):
    """A bundle is missing, incomplete or corrupted; `file` names the culprit."""

    def __init__(self, file: Path | str, problem: str) -> None:
        self.file = Path(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


@dataclass(frozen=True)
class BundleFiles:
    """Paths of a bundle's files; the names are part of the format."""

    root: Path

    MANIFEST = "manifest.json"
    ENCODER = "encoder.onnx"
    ITEMS = "items.npy"
    INDEX = "index.faiss"
    CATALOG = "catalog.json"
    SAMPLES = "samples.npz"
    CONTENT = (ENCODER, ITEMS, INDEX, CATALOG, SAMPLES)  # checksummed in the manifest

    @property
    def manifest(self) -> Path:
        return self.root / self.MANIFEST

    @property
    def encoder(self) -> Path:
        return self.root / self.ENCODER

    @property
    def items(self) -> Path:
        return self.root / self.ITEMS

    @property
    def index(self) -> Path:
        return self.root / self.INDEX

    @property
    def catalog(self) -> Path:
        return self.root / self.CATALOG

    @property
    def samples(self) -> Path:
        return self.root / self.SAMPLES


class ModelInfo(BaseModel):
    arch: str
    dim: int
    intents: int  # K user vectors per sequence (1 for SASRec)
    max_len: int  # the encoder reads only the last max_len positions
    n_items: int  # N real items; item vectors and catalog have N + 1 rows (row 0 = padding)


class OnnxInfo(BaseModel):
    opset: int
    input_name: str = "item_seq"
    output_name: str = "user_vectors"
    # (batch, K, min(seq, max_len)): each position's weight in each intent, for explanations;
    # None in bundles exported before explanations existed
    weights_name: str | None = None
    parity_max_abs_diff: float  # ONNX Runtime vs torch on real sequences
    n_parity_sequences: int
    optimization: str  # ONNX Runtime graph optimisation level the stored graph was saved with


class IndexInfo(BaseModel):
    kind: str  # "flat" | "ivf" | "hnsw"
    params: dict[str, Any]  # search parameters to apply after loading (nprobe / efSearch)
    recall_at_100: float  # merged per-user recall@100 against exact search, measured at export
    n_items: int
    build_seconds: float = 0.0


class TextItemsInfo(BaseModel):
    """Items nobody interacted with in training, placed by the text map (models_export/
    text_items.py), and how well that map placed held-out known items."""

    text_model: str
    count: int  # catalog rows whose vector came from their text
    held_out: int  # known items kept out of the map's fit to measure it
    recall_at_100: float  # held-out items found among their mapped vector's 100 neighbours
    popularity_recall_at_100: float  # the same items among the 100 most popular
    ridge: float | None = None  # the map's regularisation, chosen on the fit items (None: 1.0)


class Manifest(BaseModel):
    format_version: int
    version: str
    created_at: datetime
    model: ModelInfo
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    onnx: OnnxInfo
    index: IndexInfo
    files: dict[str, str]  # file name -> sha256 hex
    text_items: TextItemsInfo | None = None  # `export --with-text-items`


@dataclass(frozen=True)
class Catalog:
    """Internal id (list position) <-> external id, with what the LLM prompt shows."""

    external_ids: list[str]
    titles: list[str]
    texts: list[str]
    popularity: np.ndarray  # int64 (N + 1,)
    # rows whose vector was mapped from their text (`export --with-text-items`); empty: none
    from_text: frozenset[int] = frozenset()

    def __len__(self) -> int:
        return len(self.external_ids)

    def internal_ids(self) -> dict[str, int]:
        """External id -> internal id, without the padding row."""
        return {ext: i for i, ext in enumerate(self.external_ids) if i > 0}

    def to_json(self) -> dict[str, Any]:
        items = [
            {
                "id": i,
                "external_id": self.external_ids[i],
                "title": self.titles[i],
                "text": self.texts[i],
                "popularity": int(self.popularity[i]),
                "from_text": i in self.from_text,
            }
            for i in range(len(self))
        ]
        return {"items": items}


@dataclass(frozen=True)
class VerifyReport:
    bundle_dir: Path
    version: str
    files_checked: list[str]
    parity_max_abs_diff: float
    n_parity_sequences: int
    index_kind: str
    index_ntotal: int


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_hash(files: dict[str, str], length: int = 10) -> str:
    """Short hash of a bundle's content (the checksums of its files, names included)."""
    text = "\n".join(f"{name}:{digest}" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def new_version(files: dict[str, str], now: datetime | None = None) -> str:
    """`<UTC time>-<short content hash>`: sorts by time, names what it holds."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{content_hash(files)}"


def resolve_bundle(path: Path | str) -> Path:
    """A bundle directory, a `current` link, or a bundles root holding `current` -> the real
    version directory (resolved once, so a later switch does not change what the caller reads).
    """
    path = Path(path)
    if not path.exists():
        raise BundleError(path, "no such bundle directory")
    if not (path / BundleFiles.MANIFEST).exists() and (path / CURRENT_LINK).exists():
        path = path / CURRENT_LINK
    real = path.resolve()
    if not (real / BundleFiles.MANIFEST).is_file():
        raise BundleError(real / BundleFiles.MANIFEST, "missing (not a bundle directory)")
    return real


def load_manifest(bundle_dir: Path | str) -> Manifest:
    file = Path(bundle_dir) / BundleFiles.MANIFEST
    try:
        raw = json.loads(file.read_text())
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(file, f"not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise BundleError(file, "not a JSON object")
    version = raw.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise BundleError(
            file, f"bundle format {version!r} is not supported (expected {BUNDLE_FORMAT_VERSION})"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise BundleError(file, f"invalid manifest ({problems})") from exc


def check_files(bundle_dir: Path | str, manifest: Manifest) -> list[str]:
    """Every content file present with the checksum the manifest records; returns their names."""
    root = Path(bundle_dir)
    missing = [name for name in BundleFiles.CONTENT if name not in manifest.files]
    if missing:
        raise BundleError(root / BundleFiles.MANIFEST, f"no checksum recorded for {missing}")
    for name, expected in sorted(manifest.files.items()):
        file = root / name
        if not file.is_file():
            raise BundleError(file, "missing")
        if sha256_file(file) != expected:
            raise BundleError(file, "checksum mismatch (corrupted or modified after export)")
    return sorted(manifest.files)


def load_catalog(bundle_dir: Path | str, n_items: int | None = None) -> Catalog:
    file = Path(bundle_dir) / BundleFiles.CATALOG
    try:
        items = json.loads(file.read_text())["items"]
        catalog = Catalog(
            external_ids=[str(row["external_id"]) for row in items],
            titles=[str(row["title"]) for row in items],
            texts=[str(row["text"]) for row in items],
            popularity=np.asarray([int(row["popularity"]) for row in items], dtype=np.int64),
            from_text=frozenset(i for i, row in enumerate(items) if row.get("from_text")),
        )
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(file, f"unreadable catalog ({exc!r})") from exc
    if n_items is not None and len(catalog) != n_items + 1:
        raise BundleError(file, f"{len(catalog)} rows, expected n_items + 1 = {n_items + 1}")
    return catalog


def load_item_vectors(bundle_dir: Path | str, model: ModelInfo) -> np.ndarray:
    """float32 (N + 1, D), row 0 = padding."""
    file = Path(bundle_dir) / BundleFiles.ITEMS
    try:
        vectors = np.load(file, allow_pickle=False)
    except FileNotFoundError:
        raise BundleError(file, "missing") from None
    except (OSError, ValueError) as exc:
        raise BundleError(file, f"unreadable array ({exc})") from exc
    expected = (model.n_items + 1, model.dim)
    if vectors.dtype != np.float32 or vectors.shape != expected:
        raise BundleError(file, f"{vectors.dtype} {vectors.shape}, expected float32 {expected}")
    return vectors


def write_json(path: Path, payload: Any) -> None:
    """Write and fsync, so a renamed bundle is on disk before `current` points at it."""
    with path.open("w") as handle:
        json.dump(payload, handle, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def remove_stale_temp(bundles_root: Path, older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Delete what killed exports left behind (a SIGKILL skips their own clean-up); returns
    the removed paths. Recent temp folders may belong to an export running now and stay."""
    cutoff = time.time() - older_than_s
    removed = []
    for path in bundles_root.glob(f"{TEMP_PREFIX}*"):
        if path.lstat().st_mtime >= cutoff:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def switch_current(bundles_root: Path, version_dir: Path) -> Path:
    """Point `bundles_root/current` at `version_dir` atomically; a reader sees the old or the new
    target, never no link. The link is relative so the bundles directory can be moved or mounted.
    """
    link = bundles_root / CURRENT_LINK
    tmp_link = bundles_root / f"{TEMP_PREFIX}link-{uuid.uuid4().hex}"
    os.symlink(os.path.relpath(version_dir, bundles_root), tmp_link)
    try:
        os.replace(tmp_link, link)
    except BaseException:
        tmp_link.unlink(missing_ok=True)
        raise
    return link


@dataclass(frozen=True)
class LoadedBundle:
    """What serving needs from a bundle, loaded without torch (faiss is imported on use)."""

    root: Path
    manifest: Manifest
    catalog: Catalog
    item_vectors: np.ndarray  # float32 (N + 1, D)
    index: Any  # faiss.Index with ids = internal ids, search parameters applied
    encoder_path: Path  # give it to onnxruntime.InferenceSession

    @property
    def version(self) -> str:
        return self.manifest.version


def read_index(path: Path, info: IndexInfo) -> Any:
    """Read a bundle's index and apply its tuned parameters; errors name the file."""
    import faiss

    from models_export.index import apply_params

    path = Path(path)
    if not path.is_file():
        raise BundleError(path, "missing")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise BundleError(path, f"unreadable FAISS index ({str(exc).splitlines()[0]})") from exc
    if index.ntotal != info.n_items:
        raise BundleError(path, f"{index.ntotal} vectors, manifest says {info.n_items} items")
    try:
        apply_params(index, info.kind, info.params)
    except (KeyError, RuntimeError, AttributeError) as exc:
        raise BundleError(path, f"does not match index kind {info.kind!r} ({exc!r})") from exc
    return index


def load_bundle(path: Path | str, *, check_checksums: bool = True) -> LoadedBundle:
    """Resolve `path` (a version directory, `current`, or the bundles root) and load it.

    Every failure is a `BundleError` naming the file. The ONNX session is left to the caller
    (it chooses threads and execution provider).
    """
    root = resolve_bundle(path)
    manifest = load_manifest(root)
    if check_checksums:
        check_files(root, manifest)
    files = BundleFiles(root)
    if not files.encoder.is_file():
        raise BundleError(files.encoder, "missing")
    return LoadedBundle(
        root=root,
        manifest=manifest,
        catalog=load_catalog(root, manifest.model.n_items),
        item_vectors=load_item_vectors(root, manifest.model),
        index=read_index(files.index, manifest.index),
        encoder_path=files.encoder,
    )
