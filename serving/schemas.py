"""Request and response models of the HTTP API: the one contract of routes and use cases."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.refine.contract import Degraded, RefinePolicy

ItemId = Annotated[str, Field(min_length=1, max_length=256, examples=["50"])]
UserId = Annotated[str, Field(min_length=1, max_length=256, examples=["196"])]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "196", "k": 10},
                {"history": ["50", "181", "258"], "k": 5, "exclude": ["100"], "budget_ms": 30},
            ]
        },
    )

    user_id: UserId | None = Field(
        None, description="Whose stored history (Redis) to use; unknown users get popularity."
    )
    history: list[ItemId] = Field(
        default_factory=list,
        description="Recent item ids, oldest first, used on top of the stored history as the most "
        "recent actions. At most INTENTREC_HISTORY_CAP ids (default 500); unknown ids are "
        "ignored and listed in `unknown_history`.",
    )
    k: int = Field(10, ge=1, le=100, description="How many items to return.")
    exclude_seen: bool = Field(True, description="Drop items already in the history.")
    exclude: list[ItemId] = Field(
        default_factory=list, max_length=1000, description="Item ids never to return."
    )
    budget_ms: float | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Latency budget; default INTENTREC_DEFAULT_BUDGET_MS. The answer comes within "
        "budget + 5 ms, degraded if a stage had to be skipped.",
    )
    refine: RefinePolicy = Field(
        RefinePolicy.AUTO,
        description="LLM re-ranking of ranks 6..N: `on`, `off`, or `auto` (when it helps).",
    )
    explain: bool = Field(
        False,
        description="Add an `explanation` to every item: the intent that scored it, the history "
        "items that weigh most in that intent, and its rank before the LLM re-ranked.",
    )


class HistoryItem(BaseModel):
    item_id: str
    title: str | None = Field(description="None when the served model does not know the item.")


class Explanation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["model", "popularity"] = Field(
        description="`popularity` when the encoder did not rank the item (cold start, skipped)."
    )
    intent: int | None = Field(
        description="Which of the model's K user vectors scores the item highest (0 for SASRec)."
    )
    because: list[HistoryItem] = Field(
        description="Up to 3 history items that weigh most in that intent, heaviest first."
    )
    rank_before_refine: int | None = Field(
        description="The item's rank before the LLM re-ranked; None when refine did not run."
    )


class RecommendedItem(BaseModel):
    model_config = ConfigDict(extra="forbid")  # tests hold the served answers to it exactly

    item_id: str
    score: float
    rank: int
    title: str
    explanation: Explanation | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="Only with `explain: true`.",
    )


class RecommendResponse(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # tests hold the served answers to it exactly
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"item_id": "100", "score": 7.31, "rank": 1, "title": "Fargo (1996)"}
                    ],
                    "model_version": "20261125-091500-sasrec",
                    "refined": False,
                    "degraded": [],
                    "unknown_history": [],
                    "timings_ms": {"history": 0.2, "encode": 0.4, "retrieve": 0.1, "total": 1.1},
                    "request_id": "3f1c0c4e8a5b4d0e9b7e2b1f4c6a7d21",
                }
            ]
        },
    )

    items: list[RecommendedItem]
    model_version: str
    refined: bool
    refine_from_cache: bool = Field(False, description="The LLM order came from the cache.")
    degraded: list[Degraded] = Field(
        description="Why the answer is not the full pipeline's; empty when it is. "
        "encode_skipped_budget and cold_start mean popularity answered."
    )
    unknown_history: list[str] = Field(description="History ids the model does not know.")
    timings_ms: dict[str, float] = Field(description="Milliseconds per stage and `total`.")
    request_id: str


class Event(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "196", "item_id": "242", "event_id": "e-1"}]},
    )

    user_id: UserId
    item_id: ItemId
    timestamp: float | None = Field(
        None, ge=0, description="Unix seconds; informational, events are kept in arrival order."
    )
    event_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Idempotency key: an event whose id was already seen is not appended again.",
    )


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(
        min_length=1, description="At most INTENTREC_MAX_EVENTS_PER_REQUEST (default 1000)."
    )


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events appended to a history.")
    duplicates: int = Field(description="Events skipped because their event_id was seen before.")
    unknown_items: list[str] = Field(
        description="Stored anyway (a later bundle may know them), but the served model does not."
    )


class UserHistory(BaseModel):
    user_id: str
    items: list[HistoryItem] = Field(description="Oldest first, capped per user.")


class ForgottenUser(BaseModel):
    """What `DELETE /users/{user_id}` erased; a second call finds nothing left."""

    user_id: str
    history_items: int = Field(description="Actions of the stored history.")
    event_ids: int = Field(description="Idempotency keys of the user's events.")
    refine_entries: int = Field(description="Cached LLM re-rankings of the user's requests.")
    cached_histories: int = Field(
        description="In-process copies dropped by the answering process; the other processes "
        "drop theirs when Redis announces the deletion."
    )


class ItemInfo(BaseModel):
    item_id: str
    title: str
    text: str
    popularity: int
    from_text: bool = Field(
        default=False,
        description="Nobody interacted with the item in training: its vector was mapped from "
        "its text (`intentrec export --with-text-items`).",
    )


class Health(BaseModel):
    status: str


class DeviceReport(BaseModel):
    name: Literal["cuda", "cpu", "mixed"] = Field(
        description="Where the model runs; `mixed`: encoder and index apart."
    )
    encoder: Literal["cuda", "cpu"] = Field(description="From the providers ONNX Runtime loaded.")
    index: Literal["cuda", "cpu"] = Field(description="Where the FAISS index was placed.")
    providers: list[str] = Field(description="ONNX Runtime's loaded providers, in order.")
    index_type: str = Field(description="The FAISS index class searched.")


class Readiness(BaseModel):
    ready: bool
    model_version: str | None
    history_store: str = Field(description="ok or unavailable")
    refine: str = Field(description="available or unavailable")
    device: DeviceReport | None = Field(description="None until a bundle is loaded.")


class ReloadResult(BaseModel):
    model_version: str
    previous_version: str
    bundle_dir: str
    changed: bool


class ErrorInfo(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo
