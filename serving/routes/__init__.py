"""HTTP routes: thin adapters from requests to the use cases."""

from __future__ import annotations

from fastapi import FastAPI

from serving.routes import admin, events, health, items, metrics, recommend, users


def include_routes(app: FastAPI) -> None:
    for module in (recommend, events, users, items, health, metrics, admin):
        app.include_router(module.router)
