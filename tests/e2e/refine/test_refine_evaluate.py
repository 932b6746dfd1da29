"""`evaluate-refine` against the real LLM on a few validation and test users of ml-100k: the
report pairs each user's refined ranking with the encoder's, and the lift file it writes is
what `refine=auto` reads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from serving.refine.evaluate import SPLITS, EvalConfig, evaluate_refine
from serving.refine.lift import read_lift, write_lift
from serving.refine.settings import RefineSettings
from tests.conftest import ML100K

pytestmark = [pytest.mark.llm, pytest.mark.slow]


async def test_the_lift_is_paired_per_split_and_recorded(
    llm_server, llm_settings: RefineSettings, tiny_bundle: Path, tmp_path: Path
) -> None:
    config = EvalConfig(bundle=tiny_bundle, data=ML100K, users=4, refine_all=False)
    report = await evaluate_refine(config, llm_settings)
    assert set(report["splits"]) == set(SPLITS)
    for split in SPLITS:
        figures = report["splits"][split]
        assert figures["users"] == 4
        assert set(figures["metrics"]) == {"encoder", "refined", "shuffled"}
        metrics, lift = figures["metrics"], figures["lift"]["all"]["ndcg@10"]
        assert lift["users"] == 4
        assert lift["mean"] == pytest.approx(
            metrics["refined"]["ndcg@10"] - metrics["encoder"]["ndcg@10"]
        )
        low, high = lift["ci95"]
        assert low <= lift["mean"] <= high
        groups = set(figures["lift"]) - {"all"}
        assert groups <= {"history<=5", "history>5"}
        assert sum(figures["lift"][g]["ndcg@10"]["users"] for g in groups) == 4
    assert report["lift_ndcg10"] == report["splits"]["valid"]["lift"]["all"]["ndcg@10"]["mean"]
    assert report["calls"]["refined"]["calls"] == 8  # 4 users x 2 splits
    assert not math.isnan(report["calls"]["refined"]["latency_p50_ms"])

    lift_file = tmp_path / "lift.json"
    write_lift(lift_file, report["llm_model"], report)
    evidence = read_lift(lift_file, report["llm_model"])
    assert evidence is not None and evidence.bundle == report["bundle"]
    assert evidence.refines == (report["ci95"][0] > 0)
