"""Refine's lift with a paired-bootstrap interval, by history length, and the gate of
`refine=auto` on the validation interval."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from serving.refine import build_refiner
from serving.refine.contract import RefinePolicy
from serving.refine.evaluate import VariantResult, lift_report
from serving.refine.lift import paired_bootstrap, read_lift, write_lift
from serving.refine.settings import RefineSettings


def test_a_constant_difference_has_a_zero_width_interval() -> None:
    lift = paired_bootstrap(np.full(50, 0.3), np.full(50, 0.1))
    assert lift.mean == pytest.approx(0.2)
    assert (lift.low, lift.high) == pytest.approx((0.2, 0.2))
    assert lift.users == 50


def test_the_pairing_removes_what_users_share() -> None:
    rng = np.random.default_rng(0)
    encoder = rng.random(200)  # users differ a lot from each other
    refined = encoder + 0.01  # refine adds the same small amount to each
    paired = paired_bootstrap(refined, encoder)
    assert paired.low > 0 and paired.high - paired.low < 1e-9
    # without the pairing (each variant's users resampled apart) 0.01 drowns in the spread
    unpaired = np.percentile(
        [rng.choice(refined, 200).mean() - rng.choice(encoder, 200).mean() for _ in range(2000)],
        [2.5, 97.5],
    )
    assert unpaired[0] < 0 < unpaired[1]


def test_noise_around_zero_gives_an_interval_around_zero_and_a_seed_repeats_it() -> None:
    rng = np.random.default_rng(1)
    encoder = rng.random(300)
    refined = encoder + rng.normal(0.0, 0.05, 300)
    lift = paired_bootstrap(refined, encoder, seed=3)
    assert lift.low < 0 < lift.high
    # the interval's half-width is about 1.96 standard errors of the mean difference
    standard_error = np.std(refined - encoder, ddof=1) / math.sqrt(300)
    assert (lift.high - lift.low) / 2 == pytest.approx(1.96 * standard_error, rel=0.15)
    assert paired_bootstrap(refined, encoder, seed=3) == lift


def test_unpaired_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="two equal 1-d arrays"):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="no users"):
        paired_bootstrap(np.zeros(0), np.zeros(0))


def test_lift_by_history_length_splits_the_users() -> None:
    encoder, refined = VariantResult(), VariantResult()
    # three short-history users whom refine moves from rank 2 to rank 1, two long-history users
    # whom it moves from rank 1 to rank 11 (out of the top 10)
    for _ in range(3):
        encoder.add([9, 1, 8], target=1)
        refined.add([1, 9, 8], target=1)
    for _ in range(2):
        encoder.add([1, *range(10, 20)], target=1)
        refined.add([*range(10, 20), 1], target=1)
    report = lift_report(refined, encoder, [2, 5, 3, 6, 40], seed=0)
    short, long = report["history<=5"], report["history>5"]
    gain = 1.0 - 1.0 / math.log2(3)
    assert short["ndcg@10"]["mean"] == pytest.approx(gain)
    assert short["ndcg@10"]["users"] == 3 and short["hr@10"]["mean"] == 0.0
    assert long["ndcg@10"]["mean"] == pytest.approx(-1.0) and long["hr@10"]["mean"] == -1.0
    assert report["all"]["ndcg@10"]["mean"] == pytest.approx((3 * gain - 2) / 5)
    # no long-history user: that group is left out rather than reported empty
    assert set(lift_report(refined, encoder, [1, 1, 1, 1, 1], seed=0)) == {"all", "history<=5"}


async def test_auto_refines_only_when_the_validation_interval_is_above_zero(
    tmp_path: Path,
) -> None:
    lift_file = tmp_path / "lift.json"
    settings = RefineSettings(llm_base_url="http://127.0.0.1:9/v1", refine_lift_file=lift_file)

    async def wants_auto() -> bool:
        refiner = build_refiner(settings, None, settings.lift_file(tmp_path))
        assert refiner is not None
        try:
            return refiner.wants(RefinePolicy.AUTO)
        finally:
            await refiner.aclose()

    def entry(lift: float, low: float, high: float) -> dict:
        return {"lift_ndcg10": lift, "ci95": [low, high], "bundle": "v1"}

    assert not await wants_auto()  # no measurement: no refine
    write_lift(lift_file, "smollm2", entry(0.004, -0.002, 0.01))
    evidence = read_lift(lift_file, "smollm2")
    assert evidence is not None and evidence.bundle == "v1" and not evidence.refines
    assert not await wants_auto()  # a positive lift whose interval reaches zero is no evidence
    write_lift(lift_file, "smollm2", entry(0.02, 0.001, 0.04))
    write_lift(lift_file, "another-llm", entry(-0.1, -0.2, -0.05))
    assert await wants_auto()  # each model keeps its own entry
    assert not read_lift(lift_file, "another-llm").refines
    # an entry from before intervals were measured, or from before score became the only mode
    # (entries per mode), counts as no evidence
    for stale in (
        {"smollm2": {"lift_ndcg10": 0.05}},
        {"smollm2": {"score": entry(0.02, 0.001, 0.04)}},
    ):
        lift_file.write_text(json.dumps(stale))
        assert read_lift(lift_file, "smollm2") is None
        assert not await wants_auto()
    with pytest.raises(ValueError, match=r"\['ci95', 'bundle'\]"):
        write_lift(lift_file, "smollm2", {"lift_ndcg10": 0.1})
