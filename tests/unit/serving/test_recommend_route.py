"""Parsing of POST /recommend bodies: the plain ASGI route raises what FastAPI would."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from serving.recommend import Recommendation, RecommendedItem
from serving.routes.recommend import is_json, parse_request
from serving.schemas import RecommendedItem as RecommendedItemModel
from serving.schemas import RecommendResponse

JSON = b"application/json"


@pytest.mark.parametrize(
    "content_type",
    [b"application/json", b"application/json; charset=utf-8", b"Application/JSON",
     b"application/vnd.intentrec+json"],
)  # fmt: skip
def test_json_media_types_are_accepted(content_type) -> None:
    assert is_json(content_type)


@pytest.mark.parametrize("content_type", [None, b"text/plain", b"application/jsonx", b"json"])
def test_other_media_types_are_not(content_type) -> None:
    assert not is_json(content_type)


def test_a_valid_body_parses_with_defaults() -> None:
    request = parse_request(JSON, b'{"user_id": "196", "k": 3}')
    assert request.user_id == "196"
    assert request.k == 3
    assert request.exclude_seen is True
    assert request.history == []


def _error(content_type: bytes | None, body: bytes) -> dict:
    with pytest.raises(RequestValidationError) as raised:
        parse_request(content_type, body)
    return raised.value.errors()[0]


def test_field_errors_are_located_under_body() -> None:
    error = _error(JSON, b'{"k": 0}')
    assert error["loc"] == ("body", "k")
    assert error["type"] == "greater_than_equal"
    assert _error(JSON, b'{"history": [1, 2]}')["loc"] == ("body", "history", 0)
    assert _error(JSON, b'{"colour": "red"}')["loc"] == ("body", "colour")


def test_broken_json_and_empty_bodies_name_the_body() -> None:
    broken = _error(JSON, b'{"k": ')
    assert broken["loc"] == ("body",)
    assert broken["type"] == "json_invalid"
    assert _error(JSON, b"")["type"] == "missing"


def test_a_body_that_is_not_declared_json_is_refused_with_what_was_sent() -> None:
    error = _error(b"text/plain", b'{"k": 3}')
    assert error["loc"] == ("body",)
    assert "text/plain" in error["msg"]
    assert "none" in _error(None, b'{"k": 3}')["msg"]


def test_the_use_case_answer_has_exactly_the_documented_fields() -> None:
    assert set(Recommendation.__annotations__) == set(RecommendResponse.model_fields)
    assert set(RecommendedItem.__annotations__) == set(RecommendedItemModel.model_fields)
