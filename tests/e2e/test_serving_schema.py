"""Property-based requests generated from the OpenAPI schema: no input may cause a 5xx.

Bounded (a few examples per operation) so the run stays under a minute on 2 cores. Operations are
walked by hand: schemathesis' pytest plugin does not run under this pytest version.
"""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 50


def test_no_generated_input_causes_a_server_error(server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    checked: list[str] = []
    calls: list = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case) -> None:
            calls.append(case)
            response = case.call(base_url=server.url, timeout=10)
            case.validate_response(response, checks=[not_a_server_error])

        call()
        checked.append(operation.label)
    assert set(checked) == {
        "POST /recommend",
        "POST /events",
        "GET /users/{user_id}/history",
        "DELETE /users/{user_id}",
        "GET /items/{item_id}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "POST /admin/reload",
    }
    assert len(calls) > 5 * len(checked)


def test_the_interactive_docs_load_their_assets_from_the_app_not_a_cdn(server) -> None:
    with server.client() as http:
        page = http.get("/docs")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
        assert all(asset.startswith("/") for asset in assets), assets  # nothing off this host
        assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
        for asset in assets:
            response = http.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 0
        assert http.get("/redoc").status_code == 404  # ReDoc would need a CDN
