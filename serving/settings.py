"""Service settings: environment variables with the prefix INTENTREC_ (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.refine.settings import RefineSettings


class Settings(BaseSettings):
    """The service's settings. The refine stage's are `refine` (INTENTREC_LLM_BASE_URL,
    INTENTREC_REFINE_*: the same variables, read by RefineSettings)."""

    model_config = SettingsConfigDict(env_prefix="INTENTREC_", extra="ignore")

    data_dir: Path = Path(".intentrec")  # embedded Redis data, caches, the refine lift file
    bundle_dir: Path = Path("bundles/current")
    watch_bundle: bool = False  # reload when `bundle_dir` starts pointing elsewhere
    watch_interval_s: float = Field(2.0, gt=0)

    redis_url: str | None = None  # None: start an embedded redis-server under data_dir
    # Short: a slow Redis must cost a request milliseconds, not the whole budget.
    redis_timeout_ms: float = Field(30.0, gt=0)
    # Events are not on the latency path; refusing them on a busy host is the worse outcome.
    redis_write_timeout_ms: float = Field(1000.0, gt=0)
    # The demo page at /demo and its user picker (GET /demo/users lists stored user ids: turn it
    # off where those ids are not for everyone who can reach the API).
    demo: bool = True
    # `DELETE /users/{id}` scans the key space for the user's keys: seconds on a large Redis.
    forget_timeout_ms: float = Field(10_000.0, gt=0)
    # Redis connections per server process, opened at start; more concurrent calls wait for one.
    redis_pool_size: int = Field(32, ge=1)
    redis_retry_s: float = Field(1.0, gt=0)  # how long a failed store is skipped before a retry
    redis_failures_to_open: int = Field(3, ge=1)  # consecutive failures before skipping it
    # `always`: an acknowledged event is on disk before the answer, so it survives a kill -9.
    redis_fsync: Literal["always", "everysec"] = "always"
    history_store_len: int | None = Field(None, ge=1)  # per-user list cap; None: 4 x max_len
    event_id_ttl_s: int = Field(7 * 24 * 3600, ge=1)  # how long a repeated event_id is detected
    # Histories kept in the process, invalidated by Redis on every write (client-side caching);
    # a full entry is ~60 bytes per stored item. 0 (default): off. Against a Redis 0.5-2 ms away
    # it cut the one-client p50 but also the peak throughput (docs/benchmarks.md).
    history_cache_size: int = Field(0, ge=0)
    # Staleness bound should the invalidation connection hang without failing.
    history_cache_ttl_s: float = Field(30.0, gt=0)

    default_budget_ms: float = Field(50.0, ge=1, le=10_000)
    history_cap: int = Field(500, ge=1)  # most items accepted in a request's `history`
    max_events_per_request: int = Field(1000, ge=1)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    api_key: SecretStr | None = None  # when set, /events and /admin/* require X-API-Key

    # FastAPI's native OpenTelemetry (spans, metrics and logs to the globally configured
    # providers). Off, its check on every request (~5 us here) is skipped; /metrics is separate.
    fastapi_telemetry: bool = False

    device: Literal["auto", "cpu", "cuda"] = "auto"
    ort_intra_threads: int = Field(1, ge=0)  # 0: ONNX Runtime picks (all cores)
    ort_inter_threads: int = Field(1, ge=0)
    batch_max_size: int = Field(64, ge=1)
    # 0 takes whatever queued up while the previous batch ran: batching without added latency.
    batch_max_wait_ms: float = Field(0.0, ge=0)
    # A lone request runs on the event loop when the model's single-request time (measured at
    # load) is below this: thread hand-offs cost more than a small encoder. 0 disables.
    batch_inline_max_ms: float = Field(0.5, ge=0)

    refine: RefineSettings = Field(default_factory=RefineSettings)

    @model_validator(mode="after")
    def _empty_api_key_means_none(self) -> Settings:
        if self.api_key is not None and not self.api_key.get_secret_value():
            self.api_key = None  # INTENTREC_API_KEY= (empty) means no key, not an empty key
        return self
