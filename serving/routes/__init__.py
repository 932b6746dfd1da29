"""HTTP routes: thin adapters from requests to the use cases."""

from __future__ import annotations

from fastapi import FastAPI

from serving.routes import admin, events, health, items, metrics, recommend, users


def include_routes(app: FastAPI) -> None:
    # The hot path first (ahead of the docs' routes too) and flat: FastAPI matches an included
    # router by walking its routes.
    app.router.routes.insert(0, recommend.route)
    recommend.document(app)
    for module in (events, users, items, health, metrics, admin):
        app.include_router(module.router)
