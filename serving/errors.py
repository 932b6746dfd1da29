"""One error shape for every failure: {"error": {"code", "message", "field"?}, "detail"?}."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def error_body(code: str, message: str, field: str | None = None) -> dict:
    error: dict = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def _field_name(loc: tuple | list) -> str:
    # ("body", "k") -> "k"; ("body", "events", 3, "item_id") -> "events.3.item_id"
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation_message(request: Request, errors: list[dict]) -> tuple[str, str]:
    first = errors[0]
    if first.get("type") == "json_invalid":  # located at ("body", character offset)
        reason = first.get("ctx", {}).get("error", "")
        return "body", f"body: invalid JSON at character {first['loc'][-1]}: {reason}"
    if isinstance(first.get("input"), bytes):  # FastAPI read no JSON: the body was not declared so
        got = request.headers.get("content-type")
        got = "none" if got is None else repr(got)
        return "body", f"body: expected a JSON body (Content-Type: application/json), got {got}"
    field = _field_name(first.get("loc", ()))
    return field, f"{field}: {first.get('msg', 'invalid value')}"


def _count(request: Request, status: int) -> None:
    """Requests answered with an error, by route template (bounded label values)."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return
    route = request.scope.get("route")
    endpoint = getattr(route, "path", "unmatched").strip("/") or "root"
    outcome = "client_error" if status < 500 else "unavailable" if status == 503 else "error"
    metrics.count_request(endpoint, outcome)


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    field, message = _validation_message(request, errors)
    body = error_body("invalid_request", message, field)
    body["detail"] = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    _count(request, 422)
    return JSONResponse(body, status_code=422)


async def _on_service_error(request: Request, exc: ServiceError) -> JSONResponse:
    _count(request, exc.status)
    return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status)


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    _count(request, exc.status_code)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ServiceError, _on_service_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)


def invalid_field(field: str, message: str) -> ServiceError:
    return ServiceError(422, "invalid_request", f"{field}: {message}", field)


RECEIVED_AT = "intentrec.received_at"


class BodyTooLarge:
    """ASGI middleware: 413 for bodies over `max_bytes`, declared or streamed.

    Pure ASGI (not BaseHTTPMiddleware) so that a request pays one header lookup. A body
    without Content-Length (chunked) is read here, up to the limit, and replayed to the app.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[RECEIVED_AT] = time.perf_counter()  # request budgets count from here
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await self._reject(send)
                else:
                    await self.app(scope, receive, send)
                return
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _reject(self, send) -> None:
        response = JSONResponse(
            error_body(
                "body_too_large",
                f"request body exceeds {self.max_bytes} bytes (INTENTREC_MAX_BODY_BYTES)",
            ),
            status_code=413,
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})
