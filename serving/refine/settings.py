"""Settings of the LLM refine stage and of the embedded LLM server (env prefix INTENTREC_).

Two classes: the service holds a `RefineSettings` (serving.settings.Settings.refine); the
embedded server (`intentrec llm serve`, the stack) reads `LLMServerSettings`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The embedded SmolLM2-135M-Instruct's served name
EMBEDDED_NAME = "smollm2"


class LLMDtype(StrEnum):
    AUTO = "auto"  # bfloat16 where the CPU computes it natively, else float32
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


class RefineSettings(BaseSettings):
    """The refine stage: which LLM to ask, what to show it, and its deadlines and limits."""

    model_config = SettingsConfigDict(env_prefix="INTENTREC_", extra="ignore")

    # No base URL means no refiner (unless the embedded server is started and sets it).
    llm_base_url: str | None = None
    llm_model: str = "smollm2"
    llm_api_key: str | None = None

    refine_fixed_top: int = Field(5, ge=0)
    # The prompt's size is the cost of a call: a CPU processes ~100-250 prompt tokens a second
    # (docs/benchmarks.md). These defaults (~390 tokens, 10 candidates reordered) are sized for
    # the embedded CPU model; with an LLM on a GPU, 20 candidates and 10 history items cost little.
    refine_candidates: int = Field(15, ge=1, le=26)  # the prompt labels candidates A..Z
    # Weight of the LLM's rank in the blend with the encoder's rank (1.0 = LLM order only).
    refine_blend: float = Field(0.5, ge=0.0, le=1.0)
    refine_history: int = Field(5, ge=0)  # most recent history titles shown to the LLM
    refine_title_chars: int = Field(48, ge=8)  # longer item text is cut
    # top_logprobs asked for; a vLLM server must allow it (--max-logprobs).
    refine_top_logprobs: int = Field(20, ge=1)

    # Deadline: the LLM call gets the remaining budget minus this margin (response assembly).
    refine_safety_margin_ms: float = Field(5.0, ge=0.0)
    # Below this much time an LLM call cannot succeed: skip without calling.
    refine_min_call_ms: float = Field(40.0, ge=0.0)
    refine_cache_timeout_ms: float = Field(10.0, gt=0.0)
    # A cache write is off the request path; the bound only keeps a hung Redis from piling them up.
    refine_cache_write_timeout_ms: float = Field(1000.0, gt=0.0)
    # Hard limit of one LLM call, also when it finishes in the background.
    refine_call_timeout_s: float = Field(15.0, gt=0.0)

    refine_max_in_flight: int = Field(8, ge=1)  # LLM calls at once (foreground + background)
    refine_max_background: int = Field(4, ge=0)  # late calls allowed to finish for the cache
    refine_breaker_failures: int = Field(3, ge=1)  # consecutive failures that open the breaker
    refine_breaker_reset_s: float = Field(5.0, gt=0.0)  # open time before one probe call

    # Below this much of the request's budget left, the pipeline does not call the stage.
    refine_min_ms: float = Field(5.0, ge=0)

    refine_cache_ttl_s: int = Field(3600, ge=1)
    # JSON written by `intentrec evaluate-refine`; `refine=auto` reads the lift from it.
    # None: refine_lift.json in the data directory (`lift_file`).
    refine_lift_file: Path | None = None
    # The card of a fine-tuned ranker (`intentrec refine train`): the API warns at start-up when
    # it was trained on another bundle than the one served
    refine_ranker_card: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> RefineSettings:
        if self.refine_fixed_top >= self.refine_candidates:
            raise ValueError(
                f"INTENTREC_REFINE_FIXED_TOP ({self.refine_fixed_top}) must be smaller than "
                f"INTENTREC_REFINE_CANDIDATES ({self.refine_candidates})"
            )
        if self.refine_max_background >= self.refine_max_in_flight:
            raise ValueError(
                "INTENTREC_REFINE_MAX_BACKGROUND must be smaller than "
                "INTENTREC_REFINE_MAX_IN_FLIGHT "
                "(late calls would otherwise shed every new request)"
            )
        return self

    def lift_file(self, data_dir: Path) -> Path:
        """Where the measured lift is read and written."""
        return self.refine_lift_file or data_dir / "refine_lift.json"


class LLMServerSettings(BaseSettings):
    """The embedded LLM server (`intentrec llm serve`, the stack's LLM)."""

    model_config = SettingsConfigDict(env_prefix="INTENTREC_", extra="ignore")

    data_dir: Path = Path(".intentrec")  # same default as the service: converted models go here
    llm_python: Path | None = (
        None  # python of the environment holding vllm (scripts/install-llm.sh)
    )
    # A Hugging Face model folder to serve instead of the embedded SmolLM2, e.g. the ranker
    # `intentrec refine train` wrote; it is served under the folder's name
    llm_model_dir: Path | None = None
    llm_host: str = "127.0.0.1"
    llm_port: int = Field(8001, ge=1, le=65535)  # the stack's LLM port too: API 8000, LLM 8001
    llm_kv_cache_bytes: int = Field(1 << 30, ge=1 << 26)
    llm_max_model_len: int = Field(2048, ge=256)
    llm_start_timeout_s: float = Field(300.0, gt=0.0)
    # `auto`: bfloat16 where the CPU computes it natively (avx512_bf16 / amx_bf16), float32
    # elsewhere: without native support vLLM falls back to plain torch linear layers in bfloat16,
    # about 5x slower than float32 (docs/benchmarks.md).
    llm_dtype: LLMDtype = LLMDtype.AUTO
    # CPUs the embedded server runs on (a `taskset` list such as `1` or `2-3`); None: vLLM binds
    # its worker to one CPU itself and leaves the others to the API.
    llm_cpus: str | None = Field(None, pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$")

    @property
    def served_name(self) -> str:
        """The model name clients ask for (INTENTREC_LLM_MODEL on the API's side)."""
        return self.llm_model_dir.resolve().name if self.llm_model_dir else EMBEDDED_NAME
