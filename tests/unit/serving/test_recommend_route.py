"""POST /recommend as the app's router and exception handlers serve it.

The recommender here is a stand-in: it records the request it was given, or raises to force a
fault (a use case error, a bug) that the real one shows only under conditions a unit test cannot
arrange. Real answers are checked end to end in tests/e2e/test_serving.py."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from serving.errors import ServiceError, install_error_handlers
from serving.routes import recommend
from serving.schemas import RecommendRequest, RecommendResponse

ANSWER = RecommendResponse(
    items=[{"item_id": "50", "score": 1.5, "rank": 1, "title": "Star Wars (1977)"}],
    model_version="v1",
    refined=False,
    degraded=["cold_start"],
    unknown_history=[],
    timings_ms={"total": 0.5},
    request_id="r1",
)


class _StandIn:
    def __init__(self, exc: Exception | None = None) -> None:
        self.exc = exc
        self.requests: list[RecommendRequest] = []

    async def recommend(self, request: RecommendRequest, received_at=None) -> RecommendResponse:
        self.requests.append(request)
        if self.exc is not None:
            raise self.exc
        return ANSWER


def _app(exc: Exception | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(recommend.router)
    app.state.recommender = _StandIn(exc)
    return app


async def _post(
    app: FastAPI,
    body: bytes = b'{"k": 3}',
    content_type: str | None = "application/json",
    method: str = "POST",
) -> httpx.Response:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    headers = {} if content_type is None else {"content-type": content_type}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, "/recommend", content=body, headers=headers)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON",
     "application/vnd.intentrec+json"],
)  # fmt: skip
async def test_json_media_types_are_accepted_and_the_answer_is_the_use_cases(
    content_type,
) -> None:
    app = _app()
    response = await _post(app, b'{"user_id": "196", "k": 3}', content_type)
    assert response.status_code == 200
    assert RecommendResponse.model_validate_json(response.content) == ANSWER
    (request,) = app.state.recommender.requests
    assert (request.user_id, request.k, request.exclude_seen, request.history) == (
        "196",
        3,
        True,
        [],
    )


async def _error(body: bytes, content_type: str | None = "application/json") -> dict:
    app = _app()
    response = await _post(app, body, content_type)
    assert response.status_code == 422
    assert app.state.recommender.requests == []  # refused before the use case runs
    return response.json()


async def test_field_errors_name_the_field() -> None:
    answer = await _error(b'{"k": 0}')
    assert answer["error"]["field"] == "k"
    assert answer["detail"][0]["type"] == "greater_than_equal"
    assert (await _error(b'{"history": [1, 2]}'))["error"]["field"] == "history.0"
    assert (await _error(b'{"colour": "red"}'))["error"]["field"] == "colour"


async def test_broken_json_and_empty_bodies_name_the_body() -> None:
    broken = await _error(b'{"k": ')
    assert broken["error"]["field"] == "body"
    assert broken["detail"][0]["type"] == "json_invalid"
    assert "character 6" in broken["error"]["message"]
    assert (await _error(b""))["detail"][0]["type"] == "missing"


@pytest.mark.parametrize(
    ("content_type", "named"), [("text/plain", "'text/plain'"), (None, "none")]
)
async def test_a_body_not_declared_json_is_refused_with_what_was_sent(content_type, named) -> None:
    answer = await _error(b'{"k": 3}', content_type)
    assert answer["error"]["field"] == "body"
    assert answer["error"]["message"].endswith(f"got {named}")


async def test_a_service_error_gets_the_apps_handler() -> None:
    response = await _post(_app(ServiceError(503, "not_ready", "no bundle loaded yet")))
    assert response.status_code == 503
    assert response.json() == {"error": {"code": "not_ready", "message": "no bundle loaded yet"}}


async def test_an_unhandled_error_is_the_server_error_middlewares_500() -> None:
    assert (await _post(_app(RuntimeError("a bug")))).status_code == 500


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_other_methods_are_a_405(method: str) -> None:
    app = _app()
    response = await _post(app, method=method)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert app.state.recommender.requests == []


def test_the_openapi_document_comes_from_the_routes_signature() -> None:
    operation = _app().openapi()["paths"]["/recommend"]["post"]
    assert operation["operationId"] == "recommend_recommend_post"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/RecommendRequest"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/RecommendResponse"}
