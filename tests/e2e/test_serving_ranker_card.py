"""A fine-tuned ranker's card pairs it with the bundle it was trained on: the API warns at
start-up when another bundle is served, and stays quiet when it is the same one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from models_export.bundle import load_manifest
from serving.refine.ranker_card import ranker_mismatch
from serving.refine.settings import RefineSettings
from tests.e2e.conftest import ServerFactory

pytestmark = pytest.mark.slow


def test_a_card_names_its_bundle(tmp_path: Path) -> None:
    card = tmp_path / "ranker_card.json"
    card.write_text(json.dumps({"bundle": "v1", "base_model": "x"}))
    assert ranker_mismatch(card, "v1") is None
    assert "trained on bundle 'v1'" in ranker_mismatch(card, "v2")
    assert "unreadable" in ranker_mismatch(tmp_path / "missing.json", "v1")
    card.write_text("{}")
    assert "unreadable" in ranker_mismatch(card, "v1")


@pytest.mark.parametrize("same_bundle", [True, False])
def test_start_up_warns_about_a_ranker_of_another_bundle(
    tiny_bundle: Path,
    tmp_path: Path,
    start_server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
    same_bundle: bool,
) -> None:
    version = load_manifest(tiny_bundle).version
    card = tmp_path / "ranker_card.json"
    card.write_text(json.dumps({"bundle": version if same_bundle else "another-bundle"}))
    with (
        caplog.at_level(logging.WARNING, logger="serving.app"),
        start_server(bundle_dir=tiny_bundle.parent, refine=RefineSettings(refine_ranker_card=card)),
    ):
        pass
    warned = "trained on bundle 'another-bundle'" in caplog.text
    assert warned is not same_bundle
