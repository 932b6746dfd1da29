"""Objectives: the lambda filter, S2S terms, cut points, and that every loss trains."""

from __future__ import annotations

import math

import pytest
import torch

from training.config import ObjectiveConfig
from training.models import build_model
from training.objectives import (
    DisenObjective,
    build_objective,
    gather_columns,
    lambda_filter,
    next_item_loss,
    s2s_losses,
    shared_padding,
)
from training.objectives import _negatives_not_in as negatives_not_in

N_ITEMS = 30
MAX_LEN = 8


def model_config(arch: str) -> dict:
    config = {"arch": arch, "n_items": N_ITEMS, "dim": 16, "layers": 1, "max_len": MAX_LEN}
    if arch == "disen":
        config |= {"intents": 2, "temperature": 0.1}
    return config


def training_windows(width: int, rows: int = 16, seed: int = 0) -> torch.Tensor:
    """Left-padded sequences of varying length with a learnable pattern (next = current + 1)."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(rows, width, dtype=torch.long)
    for row in range(rows):
        length = int(torch.randint(2, width + 1, (1,), generator=gen))
        start = int(torch.randint(1, N_ITEMS + 1, (1,), generator=gen))
        out[row, width - length :] = (torch.arange(length) + start - 1) % N_ITEMS + 1
    return out


@pytest.mark.parametrize(
    ("lam", "rows", "k"), [(0.3, 10, 4), (0.1, 7, 3), (0.6, 5, 2), (1.0, 3, 3)]
)
def test_lambda_filter_keeps_exactly_the_smallest_share(lam: float, rows: int, k: int) -> None:
    losses = torch.rand(rows, k, generator=torch.Generator().manual_seed(rows))
    mask = lambda_filter(losses, lam)
    expected = math.ceil(round(lam * rows * k, 9))
    assert mask.shape == losses.shape
    assert int(mask.sum()) == expected
    assert losses[mask].max() <= losses[~mask].min() if expected < losses.numel() else mask.all()


def test_lambda_filter_does_not_round_float_noise_up() -> None:
    # 0.3 * 10 * 4 is 12.000000000000002 in floating point: still 12 terms
    assert int(lambda_filter(torch.rand(10, 4), 0.3).sum()) == 12


@pytest.mark.parametrize("lam", [0.0, -0.1, 1.5])
def test_lambda_filter_rejects_out_of_range_lambda(lam: float) -> None:
    with pytest.raises(ValueError, match="lambda"):
        lambda_filter(torch.rand(3, 2), lam)


def test_s2s_term_is_small_when_present_and_future_agree() -> None:
    torch.manual_seed(0)
    future = torch.nn.functional.normalize(torch.randn(4, 2, 8), dim=-1) * 8
    aligned = s2s_losses(future.clone(), future, scale=1.0)
    shuffled = s2s_losses(future.roll(1, dims=0), future, scale=1.0)
    assert aligned.shape == (4, 2)
    assert (aligned < shuffled).all()


def test_gather_columns_pads_out_of_range_columns() -> None:
    seqs = torch.tensor([[1, 2, 3], [4, 5, 6]])
    columns = torch.tensor([[-1, 0, 2], [2, 3, 1]])
    assert gather_columns(seqs, columns).tolist() == [[0, 1, 3], [6, 0, 5]]


def test_bce_negatives_avoid_the_users_items() -> None:
    torch.manual_seed(0)
    history = torch.arange(1, N_ITEMS - 2).repeat(50, 1)  # all but the last three items
    targets = torch.full((50,), N_ITEMS)
    negatives = negatives_not_in(history, targets, 4, N_ITEMS)
    drawn = negatives[negatives > 0]
    assert drawn.numel() > 0
    assert set(drawn.tolist()) <= {N_ITEMS - 2, N_ITEMS - 1}


def test_disen_cuts_leave_items_on_both_sides_within_the_future_length() -> None:
    objective = build_objective(model_config("disen"), ObjectiveConfig(future_len=3))
    assert isinstance(objective, DisenObjective)
    seqs = training_windows(objective.window, rows=64)
    cut, usable = objective.cuts(seqs)
    width = seqs.shape[1]
    first_real = width - (seqs != 0).sum(1)
    assert usable.all()
    assert (cut > first_real).all()
    assert (cut <= width - 1).all()
    assert (cut >= width - 3).all()


def test_sequence_window() -> None:
    assert build_objective(model_config("sasrec")).window == MAX_LEN + 1
    disen = build_objective(model_config("disen"), ObjectiveConfig(future_len=5))
    assert disen.window == MAX_LEN + 5


def test_bad_objective_options_are_named() -> None:
    with pytest.raises(ValueError, match="loss"):
        build_objective(model_config("sasrec"), ObjectiveConfig(loss="hinge"))
    with pytest.raises(ValueError, match="s2s_lambda"):
        build_objective(model_config("disen"), ObjectiveConfig(s2s_lambda=0.0))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        ObjectiveConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="label_smoothing applies to the ce and sampled"):
        ObjectiveConfig(loss="bce", label_smoothing=0.1)


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_smoothed_catalog_loss_spreads_its_share_over_the_real_items_only(
    smoothing: float,
) -> None:
    """(1 - e) * -log p(target) + e * mean over items 1..N of -log p(item): the padding row
    neither receives probability nor counts among the items."""
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(5, 1, 8, generator=gen)
    items = torch.randn(N_ITEMS + 1, 8, generator=gen)
    items[0] = 100.0  # a padding row that took part would dominate every softmax
    targets = torch.tensor([1, 4, 9, 17, N_ITEMS])
    loss = next_item_loss(users, targets, items, ObjectiveConfig(label_smoothing=smoothing))
    log_p = torch.log_softmax(users[:, 0] @ items[1:].T, dim=1)
    target_term = -log_p[torch.arange(5), targets - 1]
    expected = ((1 - smoothing) * target_term - smoothing * log_p.mean(1)).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


CASES = [
    ("sasrec", {"loss": "ce"}),
    ("sasrec", {"loss": "bce", "negatives": 2}),
    ("sasrec", {"loss": "sampled", "negatives": 8}),
    ("sasrec", {"loss": "ce", "label_smoothing": 0.2}),
    ("sasrec", {"loss": "sampled", "negatives": 8, "label_smoothing": 0.2}),
    ("disen", {"loss": "ce"}),
    ("disen", {"loss": "ce", "s2i_only": True}),
    ("disen", {"loss": "sampled", "negatives": 8}),
    ("disen", {"loss": "bce", "negatives": 2}),
]


@pytest.mark.parametrize(("arch", "options"), CASES)
def test_losses_are_finite_and_decrease(arch: str, options: dict) -> None:
    torch.manual_seed(0)
    config = model_config(arch) | {"dropout": 0.0}
    model = build_model(config)
    objective = build_objective(
        config,
        ObjectiveConfig(**({"s2s_weight": 0.5, "s2s_lambda": 0.3, "future_len": 3} | options)),
    )
    seqs = training_windows(objective.window)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def evaluate() -> float:
        torch.manual_seed(1)  # same cuts and negatives before and after
        with torch.no_grad():
            return float(objective(model, seqs)[0])

    before = evaluate()
    for _ in range(15):
        loss, stats = objective(model, seqs)
        assert torch.isfinite(loss)
        assert all(math.isfinite(v) for v in stats.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert evaluate() < before
    if arch == "disen" and not options.get("s2i_only"):
        assert {"s2i", "s2s", "s2s_kept"} <= set(stats)
        assert stats["s2s_kept"] == math.ceil(0.3 * len(seqs) * 2)


def test_only_the_padding_every_row_has_is_cut_and_the_kept_columns_stay() -> None:
    seqs = torch.tensor([[0, 0, 0, 4, 5, 6], [0, 0, 0, 0, 7, 8]])
    assert shared_padding(seqs, keep=2) == 3
    assert shared_padding(torch.tensor([[0, 0, 0, 9]]), keep=2) == 2
    assert shared_padding(torch.tensor([[0, 0, 0, 9]]), keep=1) == 3
    assert shared_padding(torch.tensor([[0, 0, 0]]), keep=1) == 2
    assert shared_padding(torch.tensor([[1, 2, 3], [0, 4, 5]]), keep=2) == 0


@pytest.mark.parametrize("options", [{"loss": "ce"}, {"loss": "bce", "negatives": 2}])
def test_sasrec_loss_without_the_shared_padding_equals_the_full_window_loss(
    options: dict,
) -> None:
    config = model_config("sasrec") | {"dropout": 0.0}
    model = build_model(config)
    objective_config = ObjectiveConfig(**options)
    objective = build_objective(config, objective_config)
    short = training_windows(5)
    seqs = torch.cat([torch.zeros(len(short), objective.window - 5, dtype=torch.long), short], 1)
    torch.manual_seed(3)
    loss, _ = objective(model, seqs)
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    predict = (inputs != 0) & (targets != 0)
    history = seqs.unsqueeze(1).expand(-1, inputs.shape[1], -1)[predict]
    torch.manual_seed(3)
    full_window = next_item_loss(
        model.hidden(inputs)[predict].unsqueeze(1),
        targets[predict],
        model.item_embeddings(),
        objective_config,
        history=history if options["loss"] == "bce" else None,
    )
    assert float(loss) == pytest.approx(float(full_window), rel=1e-5)


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_disen_loss_without_the_shared_padding_equals_the_full_window_loss(loss: str) -> None:
    """One intent (every prefix predicts) and S2I only: the loss has no sampling but the cut and
    the negatives, which the same seed repeats."""
    config = model_config("disen") | {"intents": 1, "dropout": 0.0}
    model = build_model(config)
    objective_config = ObjectiveConfig(loss=loss, s2i_only=True)
    objective = build_objective(config, objective_config)
    short = training_windows(6)
    seqs = torch.cat([torch.zeros(len(short), objective.window - 6, dtype=torch.long), short], 1)
    torch.manual_seed(3)
    loss_value, stats = objective(model, seqs)
    torch.manual_seed(3)
    cut, usable = objective.cuts(seqs)
    span = min(objective.max_len, seqs.shape[1] - 1)
    columns = (cut - span).unsqueeze(1) + torch.arange(span)
    earlier = gather_columns(seqs, columns) * usable.unsqueeze(1)
    targets = gather_columns(seqs, columns + 1)
    predict = (earlier != 0) & (targets != 0)
    history = seqs.unsqueeze(1).expand(-1, span, -1)[predict]
    full_window = next_item_loss(
        model.encode_all(earlier)[0][predict],
        targets[predict],
        model.item_embeddings(),
        objective_config,
        history=history if loss == "bce" else None,
    )
    assert stats["predictions"] == float(predict.sum()) > 0
    assert float(loss_value) == pytest.approx(float(full_window), rel=1e-5)


@pytest.mark.parametrize("arch", ["sasrec", "disen"])
def test_batch_without_predictions_gives_a_zero_loss_with_a_graph(arch: str) -> None:
    config = model_config(arch)
    model = build_model(config)
    objective = build_objective(config)
    seqs = torch.zeros(4, objective.window, dtype=torch.long)
    seqs[:, -1] = 3  # one item each: nothing to predict, no cut possible
    loss, _ = objective(model, seqs)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_s2i_share_limits_predictions_but_keeps_the_cut() -> None:
    config = model_config("disen")
    objective = build_objective(config, ObjectiveConfig(s2i_share=0.25))
    assert isinstance(objective, DisenObjective)
    predict = torch.ones(5, MAX_LEN, dtype=torch.bool)
    chosen = objective.s2i_positions(predict)
    assert chosen.sum(1).tolist() == [2] * 5
    assert chosen[:, -1].all()
