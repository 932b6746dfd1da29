"""The embedded LLM server's dtype choice, CPU pinning and command line (no server started)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from serving.refine.server import (
    EmbeddedLLMServer,
    choose_dtype,
    cpu_flags,
    cpu_model,
)
from serving.refine.settings import LLMDtype, LLMServerSettings

# The two CPUs of this machine kind (AVX2-only AMD EPYC, Intel Xeon with AVX-512 bf16 but no
# AMX), and one with AMX.
AVX2_ONLY = "fpu vme sse sse2 avx fma avx2 bmi2 sha_ni vaes"
AVX512_BF16 = "fpu sse sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni"
AMX = "fpu sse sse2 avx avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile"


def cpuinfo(tmp_path: Path, flags: str, model: str = "AMD EPYC") -> Path:
    path = tmp_path / "cpuinfo"
    block = f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    path.write_text(block + block.replace(": 0", ": 1"))
    return path


def test_bfloat16_only_where_the_cpu_has_a_bfloat16_matrix_unit(tmp_path: Path) -> None:
    for flags in (AVX2_ONLY, AVX512_BF16):
        slow = choose_dtype(LLMDtype.AUTO, cpu_flags(cpuinfo(tmp_path, flags)))
        assert slow.dtype == "float32"
        assert "no amx_bf16" in slow.reason
    fast = choose_dtype(LLMDtype.AUTO, cpu_flags(cpuinfo(tmp_path, AMX)))
    assert fast.dtype == "bfloat16"
    assert "amx_bf16" in fast.reason


def test_the_setting_overrides_the_cpu(tmp_path: Path) -> None:
    forced = choose_dtype(LLMDtype.BFLOAT16, cpu_flags(cpuinfo(tmp_path, AVX2_ONLY)))
    assert (forced.dtype, forced.reason) == ("bfloat16", "set by INTENTREC_LLM_DTYPE")
    assert choose_dtype(LLMDtype.FLOAT32, frozenset({"amx_bf16"})).dtype == "float32"


def test_cpu_facts_are_read_from_cpuinfo(tmp_path: Path) -> None:
    path = cpuinfo(tmp_path, AVX2_ONLY, model="AMD EPYC 9R14")
    assert "avx2" in cpu_flags(path) and "avx512_bf16" not in cpu_flags(path)
    assert cpu_model(path) == "AMD EPYC 9R14"
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert cpu_model(tmp_path / "missing") == "unknown"


def test_the_dtype_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTENTREC_LLM_DTYPE", "float32")
    assert LLMServerSettings().llm_dtype is LLMDtype.FLOAT32
    monkeypatch.setenv("INTENTREC_LLM_DTYPE", "float16")
    with pytest.raises(ValidationError, match="llm_dtype"):
        LLMServerSettings()


def test_the_command_carries_the_dtype_and_the_pinning() -> None:
    python, model = Path("/venv/bin/python"), Path("/models/smollm2")
    free = EmbeddedLLMServer(LLMServerSettings(llm_dtype=LLMDtype.FLOAT32)).command(python, model)
    assert free[0] == str(python)
    assert free[free.index("--dtype") + 1] == "float32"
    pinned = EmbeddedLLMServer(LLMServerSettings(llm_cpus="1")).command(python, model)
    assert pinned[:4] == ["taskset", "-c", "1", str(python)]


def test_the_server_allows_the_log_probabilities_the_refine_stage_asks_for() -> None:
    python, model = Path("/venv/bin/python"), Path("/models/smollm2")
    settings = LLMServerSettings()
    wide = EmbeddedLLMServer(settings, max_logprobs=26).command(python, model)
    assert wide[wide.index("--max-logprobs") + 1] == "26"
    narrow = EmbeddedLLMServer(settings, max_logprobs=5).command(python, model)
    assert narrow[narrow.index("--max-logprobs") + 1] == "20"  # never below vLLM's default


@pytest.mark.parametrize("cpus", ["0", "1-3", "0,2", "0-1,4"])
def test_cpu_lists_in_taskset_form_are_accepted(cpus: str) -> None:
    assert LLMServerSettings(llm_cpus=cpus).llm_cpus == cpus


@pytest.mark.parametrize("cpus", ["", "one", "1;rm -rf /", "1-", "-1"])
def test_other_cpu_lists_are_refused_by_name(cpus: str) -> None:
    with pytest.raises(ValidationError, match="llm_cpus"):
        LLMServerSettings(llm_cpus=cpus)
