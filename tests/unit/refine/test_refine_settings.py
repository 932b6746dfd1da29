"""Refine settings, the cache key and the lift file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.refine import build_refiner
from serving.refine.cache import cache_key
from serving.refine.settings import RefineSettings


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENTREC_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("INTENTREC_REFINE_BLEND", "0.25")
    settings = RefineSettings()
    assert settings.refine_blend == 0.25
    assert settings.refine_fixed_top == 5 and settings.refine_candidates == 15


def test_fixed_top_must_leave_something_to_reorder() -> None:
    with pytest.raises(ValidationError, match="REFINE_FIXED_TOP"):
        RefineSettings(refine_fixed_top=20, refine_candidates=20)


def test_no_llm_url_means_no_refiner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTENTREC_LLM_BASE_URL", raising=False)
    assert build_refiner(RefineSettings(llm_base_url=None), None) is None


def test_cache_key_changes_with_every_input() -> None:
    base = dict(
        model_version="v1",
        llm_model="m",
        blend=0.5,
        fixed_top=5,
        history_ids=[1, 2],
        candidate_ids=[3, 4],
    )
    key = cache_key(**base)  # type: ignore[arg-type]
    assert key == cache_key(**base)  # type: ignore[arg-type]
    for field, value in [
        ("model_version", "v2"),
        ("llm_model", "n"),
        ("blend", 0.6),
        ("fixed_top", 0),
        ("history_ids", [2, 1]),
        ("candidate_ids", [4, 3]),
    ]:
        assert cache_key(**{**base, field: value}) != key  # type: ignore[arg-type]


def test_the_service_settings_carry_the_refine_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving.settings import Settings

    monkeypatch.setenv("INTENTREC_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("INTENTREC_REFINE_BLEND", "0.75")
    monkeypatch.setenv("INTENTREC_REFINE_FIXED_TOP", "3")
    monkeypatch.setenv("INTENTREC_DATA_DIR", "/srv/intentrec")
    settings = Settings().refine
    assert settings.llm_base_url == "http://127.0.0.1:9/v1"
    assert settings.refine_fixed_top == 3
    assert settings.llm_model == "smollm2"
    assert settings.refine_blend == 0.75
    assert settings.lift_file(Settings().data_dir) == Path("/srv/intentrec/refine_lift.json")


def test_service_settings_without_an_llm_url_build_no_refiner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving.settings import Settings

    monkeypatch.delenv("INTENTREC_LLM_BASE_URL", raising=False)
    assert build_refiner(Settings().refine, None) is None


def test_an_invalid_refine_setting_fails_the_service_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from serving.settings import Settings

    monkeypatch.setenv("INTENTREC_REFINE_BLEND", "7")
    with pytest.raises(ValidationError, match="refine_blend"):
        Settings()


def test_a_refine_stage_that_cannot_be_imported_stops_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forced: a None in sys.modules makes the import fail as a broken install would."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "serving.refine", None)
    monkeypatch.delitem(sys.modules, "serving.app", raising=False)
    with pytest.raises(ImportError, match=r"serving\.refine"):
        importlib.import_module("serving.app")
