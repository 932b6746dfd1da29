"""docker-compose.yml, its CPU override and the Dockerfiles they build, checked as data.

The Docker engine does not run here: the files are parsed with PyYAML and checked for what the
stack promises (services, health checks, dependency conditions, ports, volumes, profiles,
required variables, the GPU reservation). `docker compose config` validates them too when a
working Compose v2 CLI is present.
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


def test_services_and_profiles(services) -> None:
    assert set(services) == {"redis", "llm", "api", "trainer", "locust", "prometheus"}
    profiles = {name: service.get("profiles") for name, service in services.items()}
    # The serving path starts by default; one-shot and optional tools only when asked for.
    assert profiles == {
        "redis": None,
        "llm": None,
        "api": None,
        "trainer": ["train"],
        "locust": ["loadtest"],
        "prometheus": ["observe"],
    }


def test_long_running_services_have_health_checks(services) -> None:
    for name in ("redis", "llm", "api", "prometheus"):
        check = services[name].get("healthcheck")
        assert check and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert "ping" in _text(services["redis"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/health'" in _text(services["llm"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/healthz" in _text(services["api"]["healthcheck"]["test"])


def test_redis_is_official_and_persistent(compose, services) -> None:
    redis = services["redis"]
    assert redis["image"].split(":")[-2].endswith("redis")
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    volume, target = redis["volumes"][0].split(":")[:2]
    assert target == "/data" and volume in compose["volumes"]


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


def test_api_waits_for_healthy_dependencies_and_reads_the_bundle_read_only(services) -> None:
    api = services["api"]
    assert api["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "llm": {"condition": "service_healthy"},
    }
    assert "bundles:/bundles:ro" in api["volumes"]
    assert api["ports"] == ["${API_BIND:-127.0.0.1}:${API_PORT:-8000}:8000"]
    env = api["environment"]
    assert env["INTENTREC_REDIS_URL"] == "redis://redis:6379/0"
    assert env["INTENTREC_LLM_BASE_URL"] == "http://llm:8000/v1"
    assert env["INTENTREC_BUNDLE_DIR"].startswith("/bundles")
    assert {
        REQUIRED.fullmatch(env[k]).group(1) for k in ("INTENTREC_API_KEY", "INTENTREC_LLM_MODEL")
    } == REQUIRED_VARS
    assert all(key.startswith("INTENTREC_") for key in env)
    assert api["build"] == {"context": ".", "dockerfile": "docker/api.Dockerfile", "target": "gpu"}
    assert api["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


def test_required_variables_fail_with_a_message(compose) -> None:
    text = COMPOSE.read_text()
    assert {m.group(1) for m in REQUIRED.finditer(text)} == REQUIRED_VARS
    # Each `:?` carries a message saying what to set, not compose's bare default.
    assert all(m.group(0).split(":?", 1)[1].strip("}") for m in REQUIRED.finditer(text))


def test_trainer_trains_on_shipped_data_and_exports_into_the_bundle_volume(services) -> None:
    trainer = services["trainer"]
    script = _text(trainer["command"])
    assert "intentrec train --data data/ml-100k" in script
    assert "&& intentrec export /runs/ml-100k --out /bundles" in script
    assert "bundles:/bundles" in trainer["volumes"]
    assert trainer["build"]["dockerfile"] == "docker/trainer.Dockerfile"
    assert (ROOT / "data" / "ml-100k").is_dir()


def test_locust_runs_headless_and_bounded_against_the_api(services) -> None:
    locust = services["locust"]
    command = locust["command"]
    assert command[:2] == ["intentrec", "loadtest"]
    assert command[command.index("--host") + 1] == "http://api:8000"
    assert "--duration" in command and "--out" in command
    assert locust["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_prometheus_scrapes_the_api_metrics(services) -> None:
    prometheus = services["prometheus"]
    mount = next(v for v in prometheus["volumes"] if v.endswith(":ro"))
    config = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "intentrec-api")
    assert api_job["metrics_path"] == "/metrics"
    assert api_job["dns_sd_configs"][0]["names"] == ["api"]
    assert api_job["dns_sd_configs"][0]["port"] == 8000


def test_named_volumes_are_declared_and_published_ports_stay_local(compose, services) -> None:
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "${")):
                assert source in declared, f"{name}: volume {source} is not declared"
        for port in service.get("ports", []):
            assert port.startswith("${") and ":-127.0.0.1}" in port, f"{name}: {port}"


def test_cpu_override_drops_the_gpu_and_the_llm(compose) -> None:
    override = load(CPU_OVERRIDE)["services"]
    assert override["llm"]["profiles"] == ["gpu"]  # a profile a CPU machine never selects
    api = override["api"]
    assert api["build"]["target"] == "cpu"
    assert api["environment"]["INTENTREC_DEVICE"] == "cpu"
    assert api["depends_on"]["llm"]["required"] is False
    assert api["depends_on"]["llm-cpu"] == {"condition": "service_healthy", "required": False}
    assert api["deploy"]["__tag__"] == "!reset"  # no GPU reservation left on the API
    embedded = override["llm-cpu"]
    assert embedded["profiles"] == ["embedded-llm"]
    assert embedded["command"][:3] == ["intentrec", "llm", "serve"]
    assert "/health'" in _text(embedded["healthcheck"]["test"])
    assert "deploy" not in embedded
    assert embedded["build"]["dockerfile"] == "docker/llm-cpu.Dockerfile"


def test_embedded_llm_image_keeps_vllm_in_its_own_environment() -> None:
    text = (ROOT / "docker" / "llm-cpu.Dockerfile").read_text()
    assert "bash scripts/install-llm.sh /opt/venv-llm" in text
    assert "INTENTREC_LLM_PYTHON=/opt/venv-llm/bin/python" in text
    assert (ROOT / "scripts" / "install-llm.sh").exists()
    stages = _dockerfile_stages(ROOT / "docker" / "llm-cpu.Dockerfile")
    assert re.search(r"^USER (?!root)\S+", stages["llm-cpu"], flags=re.MULTILINE)
    assert "/health'" in stages["llm-cpu"]


def test_api_image_targets_are_multi_stage_non_root_and_torch_free() -> None:
    stages = _dockerfile_stages(ROOT / "docker" / "api.Dockerfile")
    assert {"cpu", "gpu", "cpu-build", "gpu-build"} <= set(stages)
    installs = {"cpu": 'pip install ".[cpu]"', "gpu": 'pip install ".[gpu]"'}
    for target, install in installs.items():
        final = stages[target]
        assert f"COPY --from={target}-build /opt/venv /opt/venv" in final
        assert re.search(r"^USER (?!root)\S+", final, flags=re.MULTILINE), target
        assert "HEALTHCHECK" in final and "/healthz" in final, target
        build = stages[f"{target}-build"]
        assert install in build, target
        assert "train" not in build and "torch==" not in build, target
        assert '! /opt/venv/bin/python -c "import torch"' in build, target
    assert "nvidia/cuda:" in (ROOT / "docker" / "api.Dockerfile").read_text()


def test_trainer_image_installs_cpu_torch_first() -> None:
    text = (ROOT / "docker" / "trainer.Dockerfile").read_text()
    torch_at = text.index('pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"')
    assert torch_at < text.index('pip install ".[train,cpu]"')
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    stages = _dockerfile_stages(ROOT / "docker" / "trainer.Dockerfile")
    assert re.search(r"^USER (?!root)\S+", stages["trainer"], flags=re.MULTILINE)


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
