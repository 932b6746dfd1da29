"""`HotPath` sends POST /recommend past FastAPI's exception middleware and router: the
endpoint's errors must still get the app's handlers, and other requests the normal stack.

The recommender here is a stand-in that raises: it forces faults (a use case error, a bug) that
the real one shows only under conditions a unit test cannot arrange."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from serving.errors import ServiceError, install_error_handlers
from serving.routes import recommend
from serving.routes.recommend import HotPath


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.calls = 0

    async def recommend(self, request, received_at=None):
        self.calls += 1
        raise self.exc


def _app(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.router.routes.insert(0, recommend.route)
    app.add_middleware(HotPath)
    app.state.recommender = _Raising(exc)
    return app


async def _post(app: FastAPI, method: str = "POST", body: bytes = b'{"k": 3}') -> httpx.Response:
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(
            method, "/recommend", content=body, headers={"content-type": "application/json"}
        )


async def test_a_service_error_gets_the_apps_handler() -> None:
    app = _app(ServiceError(503, "not_ready", "no bundle loaded yet"))
    response = await _post(app)
    assert response.status_code == 503
    assert response.json() == {"error": {"code": "not_ready", "message": "no bundle loaded yet"}}
    assert app.state.recommender.calls == 1


async def test_a_validation_error_is_a_422_before_the_use_case_runs() -> None:
    app = _app(ServiceError(503, "not_ready", "unused"))
    response = await _post(app, body=b'{"k": 0}')
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "k"
    assert app.state.recommender.calls == 0


async def test_an_unhandled_error_is_the_server_error_middlewares_500() -> None:
    response = await _post(_app(RuntimeError("a bug")))
    assert response.status_code == 500


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_other_methods_go_down_the_stack_to_a_405(method: str) -> None:
    app = _app(RuntimeError("unused"))
    response = await _post(app, method=method)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert app.state.recommender.calls == 0


async def test_a_subclass_gets_the_handler_of_its_closest_registered_class() -> None:
    class NotReady(ServiceError):
        pass

    response = await _post(_app(NotReady(503, "not_ready", "still loading")))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_ready"
