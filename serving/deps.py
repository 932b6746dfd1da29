"""Dependency aliases for the routes (resources live on app.state, built by the lifespan)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from serving.clients.history_store import HistoryStore
from serving.errors import ServiceError
from serving.holder import ModelHolder
from serving.metrics import Metrics
from serving.model import ServedModel
from serving.recommend import Recommender
from serving.settings import Settings

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required on /events and /admin/* when INTENTREC_API_KEY is set.",
)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_model(request: Request) -> ServedModel:
    holder: ModelHolder = request.app.state.holder
    if not holder.loaded:
        raise ServiceError(503, "not_ready", "no bundle loaded yet")
    return holder.current


async def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender


async def get_store(request: Request) -> HistoryStore:
    store: HistoryStore | None = request.app.state.store
    if store is None:
        raise ServiceError(503, "history_store_unavailable", "no history store configured")
    return store


async def require_api_key(
    request: Request, api_key: Annotated[str | None, Security(_api_key_header)] = None
) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    if api_key is None or not secrets.compare_digest(
        api_key.encode(), expected.get_secret_value().encode()
    ):
        raise ServiceError(401, "unauthorized", "missing or wrong X-API-Key header")


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ModelDep = Annotated[ServedModel, Depends(get_model)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
StoreDep = Annotated[HistoryStore, Depends(get_store)]
ApiKey = Depends(require_api_key)
