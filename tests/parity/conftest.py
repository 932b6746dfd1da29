"""Bundles exported (once per session) from the shared tiny training runs in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_run_sasrec: Path, tiny_run_disen: Path):
    """arch -> (run_dir, ExportResult), each in its own bundles root with `current` set."""
    from models_export.export import export_run

    runs = {"sasrec": tiny_run_sasrec, "disen": tiny_run_disen}
    return {
        arch: (run, export_run(run, tmp_path_factory.mktemp(f"bundles-{arch}")))
        for arch, run in runs.items()
    }
