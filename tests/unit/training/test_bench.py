"""`bench train` machinery: runs in parallel worker processes land where a sequential run would,
and a re-run with `reuse` reads them back instead of training again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.bench import PRESETS, Variant, run_dir_of, run_preset

ML100K = Path(__file__).resolve().parents[3] / "data" / "ml-100k"
TINY = {
    "data": str(ML100K),
    "dim": 16,
    "layers": 1,
    "max_len": 20,
    "epochs": 2,
    "patience": 2,
    "lr": 5e-3,
    "device": "cpu",
}
VARIANTS = [
    Variant("sasrec", {"model": "sasrec"}),
    Variant("disen K=2", {"model": "disen", "intents": 2}),
]

pytestmark = pytest.mark.slow


def test_parallel_runs_are_summarised_per_variant_and_reused(tmp_path: Path) -> None:
    results = run_preset(VARIANTS, [7], TINY, tmp_path, progress=False, jobs=2)
    assert set(results) == {"sasrec", "disen K=2"}
    for variant in VARIANTS:
        metrics = json.loads((run_dir_of(tmp_path, variant, 7) / "metrics.json").read_text())
        assert metrics["model"] == variant.overrides["model"]
        summary = results[variant.name]
        assert summary["per_seed_test_ndcg@10"] == [metrics["test"]["full"]["ndcg@10"]]
        assert summary["valid/ndcg@10"]["mean"] == pytest.approx(metrics["valid"]["ndcg@10"])
        assert summary["device"] == ["cpu"]  # where torch trained it (TINY asks for the CPU)

    stamps = {
        v.name: (run_dir_of(tmp_path, v, 7) / "checkpoint.pt").stat().st_mtime_ns for v in VARIANTS
    }
    reused = run_preset(VARIANTS, [7], TINY, tmp_path, progress=False, reuse=True, jobs=2)
    for variant in VARIANTS:
        assert (run_dir_of(tmp_path, variant, 7) / "checkpoint.pt").stat().st_mtime_ns == stamps[
            variant.name
        ]
        assert reused[variant.name]["per_seed_test_ndcg@10"] == pytest.approx(
            results[variant.name]["per_seed_test_ndcg@10"]
        )


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs"):
        run_preset(VARIANTS, [1], TINY, tmp_path, progress=False, jobs=0)


def test_tune_preset_crosses_weight_and_lambda() -> None:
    grid = {(v.overrides["s2s_weight"], v.overrides["s2s_lambda"]) for v in PRESETS["tune"]}
    assert len(grid) == len(PRESETS["tune"]) == 15
    assert all(v.overrides["model"] == "disen" for v in PRESETS["tune"])
