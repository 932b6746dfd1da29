"""What scripts/compose-check.sh cannot check by running the stack on a CPU machine.

compose-check.sh (CI runs it) builds every CPU image and runs the CPU variant for real: training,
readiness, events, refine, Locust through the proxy, Prometheus, restart and reload. What it never
runs is the GPU variant (vLLM on a GPU, the CUDA API image) and the defaults a user relies on
before any variable is set; those are checked here as data, and with `docker compose config`
where a Compose v2 CLI is present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CPU_OVERRIDE = ROOT / "docker-compose.cpu.yml"
REQUIRED_VARS = {"INTENTREC_API_KEY", "LLM_MODEL"}
CONFIG_ENV = {"INTENTREC_API_KEY": "test-key", "LLM_MODEL": "Qwen/Qwen2.5-1.5B-Instruct"}
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]*\}")


class ComposeLoader(yaml.SafeLoader):
    """PyYAML plus Compose's merge tags (`!reset`, `!override`), kept as {"__tag__": ...}."""


def _construct_tagged(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)
    return {"__tag__": node.tag, "value": value}


ComposeLoader.add_constructor("!reset", _construct_tagged)
ComposeLoader.add_constructor("!override", _construct_tagged)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def _text(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


def _dockerfile_stages(path: Path) -> dict[str, str]:
    """Stage name -> its instructions (the text up to the next FROM)."""
    parts = re.split(r"^FROM\s+", path.read_text(), flags=re.MULTILINE)[1:]
    stages = {}
    for part in parts:
        header, _, body = part.partition("\n")
        match = re.search(r"\bAS\s+(\S+)", header, flags=re.IGNORECASE)
        assert match, f"{path.name}: every stage is named (FROM {header})"
        stages[match.group(1)] = body
    return stages


def test_llm_is_vllm_on_a_gpu_with_configurable_model_and_cache(services) -> None:
    llm = services["llm"]
    assert "vllm/vllm-openai:" in llm["image"]
    command = llm["command"]
    assert REQUIRED.fullmatch(command[command.index("--model") + 1]).group(1) == "LLM_MODEL"
    assert any(
        v.startswith("${HF_CACHE:-") and v.endswith(":/root/.cache/huggingface")
        for v in llm["volumes"]
    )
    devices = llm["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "127.0.0.1:8000/health'" in _text(llm["healthcheck"]["test"])


def test_gpu_api_waits_for_the_gpu_llm_and_builds_the_cuda_image(services) -> None:
    api = services["api"]
    assert api["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "llm": {"condition": "service_healthy"},
    }
    assert api["environment"]["INTENTREC_LLM_BASE_URL"] == "http://llm:8000/v1"
    assert api["build"] == {"context": ".", "dockerfile": "docker/api-gpu.Dockerfile"}
    assert api["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_required_variables_fail_with_a_message(compose) -> None:
    text = COMPOSE.read_text()
    assert {m.group(1) for m in REQUIRED.finditer(text)} == REQUIRED_VARS
    # Each `:?` carries a message saying what to set, not compose's bare default.
    assert all(m.group(0).split(":?", 1)[1].strip("}") for m in REQUIRED.finditer(text))


def test_published_ports_stay_local_by_default(compose, services) -> None:
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    # Only the proxy and Prometheus are reachable from the host; API replicas are not.
    assert set(published) == {"proxy", "prometheus"}
    for name, ports in published.items():
        for port in ports:
            assert port.startswith("${") and ":-127.0.0.1}" in port, f"{name}: {port}"


def test_gpu_api_image_is_multi_stage_non_root_and_torch_free() -> None:
    path = ROOT / "docker" / "api-gpu.Dockerfile"
    stages = _dockerfile_stages(path)
    assert set(stages) == {"gpu", "gpu-build"}
    final, build = stages["gpu"], stages["gpu-build"]
    assert "COPY --from=gpu-build /opt/venv /opt/venv" in final
    assert re.search(r"^USER (?!root)\S+", final, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert 'pip install ".[gpu]"' in build and "torch==" not in build
    assert '! /opt/venv/bin/python -c "import torch"' in build
    assert "nvidia/cuda:" in path.read_text()
    # A CPU build must never need the CUDA base (the classic builder pulls every stage's base).
    assert "nvidia/cuda" not in (ROOT / "docker" / "api.Dockerfile").read_text()


def test_torch_images_default_to_the_cpu_wheel_index() -> None:
    """compose-check.sh builds them with TORCH_INDEX_URL empty where that index is unreachable,
    so the default a user gets is checked here."""
    text = (ROOT / "docker" / "trainer.Dockerfile").read_text()
    torch_at = text.index('pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url')
    assert torch_at < text.index('pip install ".[train,cpu]"')
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    llm = (ROOT / "docker" / "llm-cpu.Dockerfile").read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in llm


def _compose_v2() -> list[str] | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
    )
    return ["docker", "compose"] if probe.returncode == 0 else None


def _config(cli: list[str], files: list[Path], env: dict[str, str]) -> subprocess.CompletedProcess:
    args = [arg for f in files for arg in ("-f", str(f))]
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED_VARS}
    return subprocess.run(
        [
            *cli,
            *args,
            "--profile",
            "train",
            "--profile",
            "loadtest",
            "--profile",
            "observe",
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=clean | env,
    )


def test_docker_compose_config_accepts_both_variants() -> None:
    cli = _compose_v2()
    if cli is None:
        pytest.skip("no working `docker compose` (Compose v2) CLI on this machine")
    for files in ([COMPOSE], [COMPOSE, CPU_OVERRIDE]):
        result = _config(cli, files, CONFIG_ENV)
        assert result.returncode == 0, result.stderr
    missing = _config(cli, [COMPOSE], {"LLM_MODEL": "m"})
    assert missing.returncode != 0
    assert "INTENTREC_API_KEY" in missing.stderr


def test_legacy_docker_compose_accepts_the_base_file() -> None:
    """Compose v1 (Debian's `docker-compose`) knows neither `!reset` nor `depends_on.required`,
    so it checks the base file only."""
    if shutil.which("docker-compose") is None:
        pytest.skip("no `docker-compose` (Compose v1) CLI on this machine")
    result = _config(["docker-compose"], [COMPOSE], CONFIG_ENV)
    assert result.returncode == 0, result.stderr
    missing = _config(["docker-compose"], [COMPOSE], {"INTENTREC_API_KEY": "k"})
    assert missing.returncode != 0
    assert "LLM_MODEL" in missing.stderr
