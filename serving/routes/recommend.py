"""POST /recommend, the hot path: a plain ASGI endpoint inside the FastAPI app.

FastAPI's per-route machinery (dependency solving, a `json.loads` then a validation of the
parsed dict, the request and response wrappers, the included router's nested matching) cost
~0.08 ms a request on this 2-core VM, half of SASRec's encode + retrieve. Here the body is
validated from bytes by pydantic-core in one call, and the answer (plain dicts the use case
built) is written by orjson. `HotPath` hands matching requests to it ahead of FastAPI's
exception middleware, exit stack and router (another ~0.013 ms); the endpoint answers its
errors (422, 503) with the app's exception handlers, so they have the shape of every other
route's. The route stays in the router too, which answers the other methods (405). Its OpenAPI
entry comes from `_DOC_ROUTE` (see `document`).
"""

from __future__ import annotations

import inspect

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, ExceptionHandler, Receive, Scope, Send

from serving.errors import RECEIVED_AT
from serving.recommend import Recommender
from serving.schemas import ErrorResponse, RecommendRequest, RecommendResponse

PATH = "/recommend"
_HEADERS_JSON = (b"content-type", b"application/json")


def is_json(content_type: bytes | None) -> bool:
    """application/json or application/*+json, parameters (charset) ignored."""
    if content_type is None:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def parse_request(content_type: bytes | None, body: bytes) -> RecommendRequest:
    """The request model, or the RequestValidationError FastAPI would raise (locations under
    "body"), so the app's handler answers it like any other route's 422."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not is_json(content_type):
        got = "none" if content_type is None else repr(content_type.decode("latin-1"))
        raise RequestValidationError(
            [
                {
                    "type": "content_type",
                    "loc": ("body",),
                    "msg": f"expected a JSON body (Content-Type: application/json), got {got}",
                    "input": None,
                }
            ]
        )
    try:
        return RecommendRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            error["loc"] = ("body", *error["loc"])
        raise RequestValidationError(errors) from None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client went away before sending it."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    if not message.get("more_body", False):
        return message.get("body", b"")
    chunks = [message.get("body", b"")]
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


class RecommendEndpoint:
    """The ASGI app of the route; the recommender is the one the lifespan put on app.state."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return
        try:
            payload = await self._answer(scope, body)
        except Exception as exc:
            handler = _handler_for(scope["app"], exc)
            if handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_HEADERS_JSON, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _answer(scope: Scope, body: bytes) -> bytes:
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), None)
        request = parse_request(content_type, body)
        recommender: Recommender = scope["app"].state.recommender
        result = await recommender.recommend(request, received_at=scope.get(RECEIVED_AT))
        return orjson.dumps(result)


def _handler_for(app: Starlette, exc: Exception) -> ExceptionHandler | None:
    """The app's handler for `exc` (most specific class first), as the exception middleware
    would pick it: the endpoint answers its own errors, since `HotPath` skips that middleware.
    Exception itself is the server error middleware's (500)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]
    return None


class _Route(Route):
    """Records itself in the scope as FastAPI's routes do: error metrics are labelled by it."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


route = _Route(PATH, RecommendEndpoint(), methods=["POST"], name="recommend")


class HotPath:
    """ASGI middleware, innermost of the app's own: POST /recommend goes straight to its
    endpoint; everything else, other methods on /recommend included, goes down the stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope.update(child_scope)
                await route.app(scope, receive, send)
                return
        await self.app(scope, receive, send)


def recommend(body: RecommendRequest) -> RecommendResponse:
    """The signature FastAPI documents POST /recommend from (it keeps the operation id
    `recommend_recommend_post`); `RecommendEndpoint` serves the route."""
    raise RuntimeError("documentation only: RecommendEndpoint serves POST /recommend")


_DOC_ROUTE = APIRoute(
    PATH,
    recommend,
    methods=["POST"],
    description="Encodes the user's stored history (Redis) and the request's `history`, "
    "retrieves candidates, drops seen and excluded items and, when asked and in budget, lets "
    "the LLM re-rank ranks 6..N. A stage that cannot finish in the budget is skipped and named "
    "in `degraded`.",
    response_model=RecommendResponse,
    responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    summary="Top-k items for a user and/or a history, within a latency budget",
    tags=["recommend"],
)


def document(app: FastAPI) -> None:
    """The app's OpenAPI document, with the plain route described by `_DOC_ROUTE`."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=[_DOC_ROUTE, *app.routes],
            )
        return app.openapi_schema

    app.openapi = openapi
