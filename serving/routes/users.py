from __future__ import annotations

import hashlib
import logging

from fastapi import APIRouter, Path

from serving.clients.history_store import StoreUnavailable
from serving.deps import ApiKey, ModelDep, SettingsDep, StoreDep
from serving.errors import ServiceError
from serving.schemas import ErrorResponse, ForgottenUser, HistoryItem, UserHistory

router = APIRouter(tags=["users"])
# One line per erasure, with a digest of the user id and counts, never item ids: the trail
# shows that a request was honoured without keeping what was erased.
audit = logging.getLogger("intentrec.audit")


@router.get(
    "/users/{user_id}/history",
    response_model=UserHistory,
    responses={503: {"model": ErrorResponse}},
    summary="A user's stored history, oldest first (empty for an unknown user)",
)
async def user_history(
    store: StoreDep,
    model: ModelDep,
    user_id: str = Path(min_length=1, max_length=256, examples=["196"]),
) -> UserHistory:
    try:
        stored = await store.history(user_id)
    except StoreUnavailable as exc:
        raise ServiceError(503, "history_store_unavailable", str(exc)) from exc
    items = []
    for external in stored:
        internal = model.known.get(external)
        items.append(
            HistoryItem(
                item_id=external, title=None if internal is None else model.titles[internal]
            )
        )
    return UserHistory(user_id=user_id, items=items)


@router.delete(
    "/users/{user_id}",
    response_model=ForgottenUser,
    dependencies=[ApiKey],
    responses={
        401: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "History store unavailable; retry."},
    },
    summary="Forget a user: erase their history, event ids and cached re-rankings",
)
async def forget_user(
    store: StoreDep,
    settings: SettingsDep,
    user_id: str = Path(min_length=1, max_length=256, examples=["196"]),
) -> ForgottenUser:
    try:
        erased = await store.forget(user_id, settings.forget_timeout_ms / 1000.0)
    except StoreUnavailable as exc:
        raise ServiceError(
            503, "history_store_unavailable", f"nothing or part erased, retry: {exc}"
        ) from exc
    digest = hashlib.sha256(user_id.encode()).hexdigest()[:16]
    audit.info(
        "forgot user sha256:%s: %d history items, %d event ids, %d refine entries",
        digest,
        erased.history_items,
        erased.event_ids,
        erased.refine_entries,
    )
    return ForgottenUser(
        user_id=user_id,
        history_items=erased.history_items,
        event_ids=erased.event_ids,
        refine_entries=erased.refine_entries,
        cached_histories=erased.cached_histories,
    )
