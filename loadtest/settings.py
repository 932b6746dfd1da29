"""What a load run sends: read from `INTENTREC_LOADTEST_*` environment variables.

`intentrec loadtest` sets these for the Locust process it starts; a plain
`locust -f loadtest/locustfile.py` run reads the same variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LoadtestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTENTREC_LOADTEST_", extra="ignore")

    # Requests per second over all simulated clients (Poisson arrivals); 0 = closed loop.
    rate: float = Field(default=50.0, ge=0.0)
    k: int = Field(default=10, ge=1, le=100)
    # Refine on needs room for the LLM call (e.g. 1000); refine off fits in a few ms.
    budget_ms: int = Field(default=100, ge=1, le=10_000)
    refine: Literal["auto", "on", "off"] = "off"
    # Task mix (relative weights): /recommend for known users, for cold users, and /events.
    weight_known: int = Field(default=70, ge=0)
    weight_cold: int = Field(default=10, ge=0)
    weight_events: int = Field(default=20, ge=0)
    # Each simulated client owns this many end users and seeds each with this many events.
    users_per_client: int = Field(default=5, ge=1)
    seed_events: int = Field(default=8, ge=1, le=100)
    # Share of known-user requests that also pass an `exclude` list (one recent recommendation).
    exclude_share: float = Field(default=0.2, ge=0.0, le=1.0)
    # The server's history is capped (at least the model's max_len); only the most recent events
    # are guaranteed to be filtered as seen, so only those are checked.
    seen_window: int = Field(default=50, ge=1)
    # Size of the popular-items pool fetched at start (a cold /recommend) that events draw from.
    pool_size: int = Field(default=100, ge=1, le=100)
    api_key: str | None = None  # sent as X-API-Key on /events
    # Where the locustfile writes its run summary (figures + SLO verdict) when it quits.
    summary_file: Path | None = None
