"""Damaged bundles fail loudly, naming the file; a failed export changes nothing visible."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentrec.cli import app
from models_export import export as export_module
from models_export.bundle import (
    TEMP_PREFIX,
    BundleError,
    load_bundle,
    load_manifest,
    read_index,
    switch_current,
)
from models_export.verify import open_encoder, verify_bundle


@pytest.fixture
def bundle_copy(exported, tmp_path: Path) -> Path:
    """A private copy of the exported SASRec bundle, made `current` in its own root."""
    _, result = exported["sasrec"]
    copy = tmp_path / "bundles" / result.bundle_dir.name
    shutil.copytree(result.bundle_dir, copy)
    switch_current(copy.parent, copy)
    return copy


def damage(path: Path, keep: float = 0.5) -> None:
    """Keep the first part of the file and scramble the rest, as a torn write would."""
    data = path.read_bytes()
    cut = int(len(data) * keep)
    path.write_bytes(data[:cut] + bytes(b ^ 0xFF for b in data[cut : cut + 64]))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["manifest.json", "encoder.onnx", "index.faiss", "items.npy"])
def test_corrupted_file_is_named(bundle_copy: Path, name: str) -> None:
    damage(bundle_copy / name)
    for check in (verify_bundle, load_bundle):
        with pytest.raises(BundleError) as info:
            check(bundle_copy)
        assert info.value.file == bundle_copy / name
        assert name in str(info.value)


@pytest.mark.slow
def test_unreadable_onnx_and_index_are_named_even_without_checksums(bundle_copy: Path) -> None:
    manifest = load_manifest(bundle_copy)
    damage(bundle_copy / "encoder.onnx", keep=0.1)
    with pytest.raises(BundleError, match=r"encoder\.onnx: ONNX Runtime cannot load it"):
        open_encoder(bundle_copy / "encoder.onnx")
    damage(bundle_copy / "index.faiss", keep=0.1)
    with pytest.raises(BundleError, match=r"index\.faiss: unreadable FAISS index"):
        read_index(bundle_copy / "index.faiss", manifest.index)
    with pytest.raises(BundleError, match=r"index\.faiss"):
        load_bundle(bundle_copy, check_checksums=False)


@pytest.mark.slow
@pytest.mark.parametrize("fault_at", ["write_index", "write_json"])
def test_interrupted_export_leaves_current_untouched(
    exported, bundle_copy: Path, monkeypatch: pytest.MonkeyPatch, fault_at: str
) -> None:
    root = bundle_copy.parent
    before = sorted(p.name for p in root.iterdir())
    target = os.readlink(root / "current")
    real = getattr(export_module, fault_at)

    # A fake stands in here only to force the fault: a crash half-way through writing a file.
    def torn_write(*args: object) -> None:
        real(*args)
        path = next(arg for arg in args if isinstance(arg, Path))
        damage(path)
        raise OSError(f"injected failure while writing {path.name}")

    monkeypatch.setattr(export_module, fault_at, torn_write)
    with pytest.raises(OSError, match="injected failure"):
        export_module.export_run(exported["sasrec"][0], root)
    assert sorted(p.name for p in root.iterdir()) == before, "no half bundle, no temp dir left"
    assert os.readlink(root / "current") == target
    assert verify_bundle(root).version == bundle_copy.name


@pytest.mark.slow
def test_export_removes_what_a_killed_export_left_but_not_a_running_one(
    exported, bundle_copy: Path
) -> None:
    root = bundle_copy.parent
    killed = root / f"{TEMP_PREFIX}killed"
    (killed / ".scratch").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(killed, (two_days_ago, two_days_ago))
    running = root / f"{TEMP_PREFIX}running"
    running.mkdir()
    export_module.export_run(exported["sasrec"][0], root)
    assert not killed.exists()
    assert running.is_dir(), "a recent temp folder may be an export in progress"


@pytest.mark.slow
def test_cli_export_switches_current_and_verify_reports(exported, bundle_copy: Path) -> None:
    root = bundle_copy.parent
    runner = CliRunner()
    exported_run = runner.invoke(app, ["export", str(exported["disen"][0]), "--out", str(root)])
    assert exported_run.exit_code == 0, exported_run.output
    new = Path(root / "current").resolve()
    assert new != bundle_copy.resolve()
    assert new.name in exported_run.output
    assert bundle_copy.is_dir(), "the previous version stays for rollback"
    assert load_manifest(new).model.arch == "disen"

    ok = runner.invoke(app, ["bundle", "verify", str(root)])
    assert ok.exit_code == 0, ok.output
    assert new.name in ok.output

    damage(new / "catalog.json")
    bad = runner.invoke(app, ["bundle", "verify", str(root)])
    assert bad.exit_code == 1
    assert "catalog.json" in bad.output
