"""Settings come from INTENTREC_* variables and fail at start-up when inconsistent."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.settings import Settings


def test_environment_variables_with_the_prefix_are_read(monkeypatch) -> None:
    monkeypatch.setenv("INTENTREC_DEFAULT_BUDGET_MS", "75")
    monkeypatch.setenv("INTENTREC_DEVICE", "cpu")
    monkeypatch.setenv("INTENTREC_API_KEY", "k")
    settings = Settings()
    assert settings.default_budget_ms == 75
    assert settings.device == "cpu"
    assert settings.api_key.get_secret_value() == "k"


def test_an_empty_api_key_means_none(monkeypatch) -> None:
    monkeypatch.setenv("INTENTREC_API_KEY", "")
    assert Settings().api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEVICE", "tpu"), ("DEFAULT_BUDGET_MS", "0"), ("REFINE_FIXED_TOP", "20")],
)
def test_bad_values_fail_naming_the_setting(monkeypatch, name, value) -> None:
    monkeypatch.setenv(f"INTENTREC_{name}", value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()
