from __future__ import annotations

from fastapi import APIRouter, Path

from serving.deps import ModelDep
from serving.errors import ServiceError
from serving.schemas import ErrorResponse, ItemInfo

router = APIRouter(tags=["items"])


@router.get(
    "/items/{item_id}",
    response_model=ItemInfo,
    responses={404: {"model": ErrorResponse}},
    summary="An item of the served catalog",
)
async def get_item(
    model: ModelDep, item_id: str = Path(min_length=1, max_length=256, examples=["50"])
) -> ItemInfo:
    internal = model.known.get(item_id)
    if internal is None:
        raise ServiceError(
            404, "unknown_item", f"item_id {item_id!r} is not in bundle {model.version}", "item_id"
        )
    return ItemInfo(
        item_id=item_id,
        title=model.titles[internal],
        text=model.texts[internal],
        popularity=int(model.popularity[internal]),
        from_text=internal in model.from_text,
    )
