from __future__ import annotations

from fastapi import APIRouter, Path

from serving.clients.history_store import StoreUnavailable
from serving.deps import ModelDep, StoreDep
from serving.errors import ServiceError
from serving.schemas import ErrorResponse, HistoryItem, UserHistory

router = APIRouter(tags=["users"])


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
