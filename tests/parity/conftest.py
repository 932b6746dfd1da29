"""The shared tiny runs and their bundles (tests/conftest.py), keyed by architecture."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def exported(
    tiny_run_sasrec: Path,
    tiny_run_disen: Path,
    tiny_run_searched: Path,
    tiny_export_sasrec,
    tiny_export_disen,
    tiny_export_searched,
):
    """arch -> (run_dir, ExportResult), each in its own bundles root with `current` set;
    "searched" is DisenSeq on a searched trunk (`intentrec search`)."""
    return {
        "sasrec": (tiny_run_sasrec, tiny_export_sasrec),
        "disen": (tiny_run_disen, tiny_export_disen),
        "searched": (tiny_run_searched, tiny_export_searched),
    }
