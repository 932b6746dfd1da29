from __future__ import annotations

from fastapi import APIRouter, Body

from serving.clients.history_store import NewEvent, StoreUnavailable
from serving.deps import ApiKey, MetricsDep, ModelDep, SettingsDep, StoreDep
from serving.errors import ServiceError, invalid_field
from serving.schemas import ErrorResponse, Event, EventBatch, EventsAccepted

router = APIRouter(tags=["events"])


@router.post(
    "/events",
    response_model=EventsAccepted,
    dependencies=[ApiKey],
    responses={
        401: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "History store unavailable; retry."},
    },
    summary='Append one event or a batch ({"events": [...]}) to users\' histories',
)
async def post_events(
    settings: SettingsDep,
    store: StoreDep,
    model: ModelDep,
    metrics: MetricsDep,
    body: Event | EventBatch = Body(
        openapi_examples={
            "one": {"value": {"user_id": "196", "item_id": "242", "event_id": "e-1"}},
            "batch": {
                "value": {
                    "events": [
                        {"user_id": "196", "item_id": "242"},
                        {"user_id": "186", "item_id": "302", "timestamp": 891717742},
                    ]
                }
            },
        }
    ),
) -> EventsAccepted:
    events = body.events if isinstance(body, EventBatch) else [body]
    if len(events) > settings.max_events_per_request:
        raise invalid_field(
            "events",
            f"{len(events)} events, at most {settings.max_events_per_request} per request "
            "(INTENTREC_MAX_EVENTS_PER_REQUEST)",
        )
    try:
        accepted, duplicates = await store.append(
            [NewEvent(e.user_id, e.item_id, e.event_id) for e in events]
        )
    except StoreUnavailable as exc:
        raise ServiceError(
            503,
            "history_store_unavailable",
            f"events not stored, retry later (event_id makes retries safe): {exc}",
        ) from exc
    metrics.count_request("events", "ok")
    unknown = sorted({e.item_id for e in events if e.item_id not in model.known})
    return EventsAccepted(accepted=accepted, duplicates=duplicates, unknown_items=unknown)
