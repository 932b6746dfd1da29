"""Bundle format mechanics (torch-free): manifest schema, checksums, `current` switching.
Bundles exported from a real training run are covered in tests/parity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models_export.bundle import (
    BUNDLE_FORMAT_VERSION,
    BundleError,
    BundleFiles,
    IndexInfo,
    Manifest,
    ModelInfo,
    OnnxInfo,
    check_files,
    load_manifest,
    new_version,
    resolve_bundle,
    sha256_file,
    switch_current,
    write_json,
)


def make_bundle(root: Path, name: str = "v1") -> Path:
    """A directory with content files and a manifest recording their checksums."""
    bundle = root / name
    bundle.mkdir(parents=True)
    for file in BundleFiles.CONTENT:
        (bundle / file).write_bytes(f"{name}:{file}".encode())
    checksums = {file: sha256_file(bundle / file) for file in BundleFiles.CONTENT}
    manifest = Manifest(
        format_version=BUNDLE_FORMAT_VERSION,
        version=name,
        created_at=datetime.now(UTC),
        model=ModelInfo(arch="sasrec", dim=8, intents=1, max_len=5, n_items=3),
        onnx=OnnxInfo(opset=18, parity_max_abs_diff=0.0, n_parity_sequences=1, optimization="x"),
        index=IndexInfo(kind="flat", params={}, recall_at_100=1.0, n_items=3),
        files=checksums,
    )
    write_json(bundle / BundleFiles.MANIFEST, manifest.model_dump(mode="json"))
    return bundle


def test_manifest_round_trips(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    manifest = load_manifest(bundle)
    assert manifest.version == "v1"
    assert check_files(bundle, manifest) == sorted(BundleFiles.CONTENT)


def test_invalid_json_manifest_is_named(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    (bundle / "manifest.json").write_text('{"format_version": 1, "vers')
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON") as info:
        load_manifest(bundle)
    assert info.value.file.name == "manifest.json"


def test_unsupported_format_version_is_named(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=r"manifest\.json: bundle format 99 is not supported"):
        load_manifest(bundle)


def test_manifest_missing_a_field_is_named(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    raw = json.loads((bundle / "manifest.json").read_text())
    del raw["model"]
    (bundle / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(BundleError, match=r"manifest\.json: invalid manifest.*model"):
        load_manifest(bundle)


@pytest.mark.parametrize("name", BundleFiles.CONTENT)
def test_modified_file_is_named(tmp_path: Path, name: str) -> None:
    bundle = make_bundle(tmp_path)
    (bundle / name).write_bytes(b"tampered")
    with pytest.raises(BundleError, match="checksum mismatch") as info:
        check_files(bundle, load_manifest(bundle))
    assert info.value.file == bundle / name


def test_missing_file_is_named(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    (bundle / "index.faiss").unlink()
    with pytest.raises(BundleError, match=r"index\.faiss: missing"):
        check_files(bundle, load_manifest(bundle))


def test_version_is_time_then_content_hash() -> None:
    now = datetime(2026, 11, 25, 8, 30, 5, tzinfo=UTC)
    first = new_version({"a": "1"}, now)
    assert first.startswith("20261125T083005Z-")
    assert new_version({"a": "1"}, now) == first
    assert new_version({"a": "2"}, now) != first


def test_current_switch_and_resolve(tmp_path: Path) -> None:
    old, new = make_bundle(tmp_path, "v1"), make_bundle(tmp_path, "v2")
    switch_current(tmp_path, old)
    assert resolve_bundle(tmp_path) == old.resolve()
    switch_current(tmp_path, new)
    link = tmp_path / "current"
    assert os.readlink(link) == "v2", "the link is relative so the root can move"
    assert resolve_bundle(link) == new.resolve()
    assert resolve_bundle(tmp_path) == new.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v1", "v2"]


def test_resolve_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such bundle directory"):
        resolve_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        resolve_bundle(tmp_path)


def test_bundle_module_does_not_import_torch() -> None:
    code = (
        "import sys, models_export.bundle, models_export.index, models_export.verify; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
