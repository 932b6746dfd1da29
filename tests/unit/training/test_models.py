"""Encoder contract: shapes, causality, left-padding invariance, config round trip."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from tests.conftest import SEARCHED_TRUNK
from training.models import DisenSeq, SequenceEncoder, build_model, max_intent_scores

N_ITEMS = 40
MAX_LEN = 12
DIM = 16


def make(arch: str, **overrides) -> SequenceEncoder:
    torch.manual_seed(0)
    config = {"arch": arch, "n_items": N_ITEMS, "dim": DIM, "layers": 2, "max_len": MAX_LEN}
    if arch == "disen":
        config |= {"intents": 3, "temperature": 0.1}
    model = build_model(config | overrides)
    return model.eval()


def batch(lengths: list[int], width: int = MAX_LEN, seed: int = 1) -> torch.Tensor:
    """Left-padded random sequences with the given numbers of real items."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        if length:
            out[row, width - length :] = torch.randint(1, N_ITEMS + 1, (length,), generator=gen)
    return out


ARCHS = ["sasrec", "disen"]


@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes(arch: str) -> None:
    model = make(arch)
    seqs = batch([12, 5, 1])
    k = 3 if arch == "disen" else 1
    assert model.n_intents == k
    assert model.encode(seqs).shape == (3, k, DIM)
    assert model.item_embeddings().shape == (N_ITEMS + 1, DIM)
    assert model.score_all(seqs).shape == (3, N_ITEMS + 1)
    assert model.hidden(seqs).shape == (3, MAX_LEN, DIM)


@pytest.mark.parametrize("arch", ARCHS)
def test_score_all_is_max_over_intents_of_dot_products(arch: str) -> None:
    model = make(arch)
    seqs = batch([7, 3])
    with torch.no_grad():
        expected = torch.einsum("bkd,nd->bkn", model.encode(seqs), model.item_embeddings())
        torch.testing.assert_close(model.score_all(seqs), expected.amax(1))


@pytest.mark.parametrize("arch", ARCHS)
def test_per_position_outputs_are_causal(arch: str) -> None:
    model = make(arch)
    seqs = batch([12, 9])
    changed = seqs.clone()
    t = 7
    changed[:, t + 1 :] = (changed[:, t + 1 :] % N_ITEMS) + 1
    with torch.no_grad():
        before, after = model.hidden(seqs), model.hidden(changed)
    torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1])
    assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])


def test_disen_prefix_intents_are_causal_and_match_encode() -> None:
    model = make("disen")
    assert isinstance(model, DisenSeq)
    seqs = batch([12, 10])
    changed = seqs.clone()
    t = 6
    changed[:, t + 1 :] = (changed[:, t + 1 :] % N_ITEMS) + 1
    with torch.no_grad():
        before, _ = model.encode_all(seqs)
        after, _ = model.encode_all(changed)
        torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1])
        assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])
        # the row of the last position is exactly what serving gets from `encode`
        torch.testing.assert_close(before[:, -1], model.encode(seqs))


@pytest.mark.parametrize("arch", ARCHS)
def test_left_padding_does_not_change_encode(arch: str) -> None:
    model = make(arch)
    short = batch([4, 1, 7], width=7)
    padded = torch.cat([torch.zeros(3, MAX_LEN - 7, dtype=torch.long), short], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(short), model.encode(padded), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            model.hidden(short), model.hidden(padded)[:, -7:], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("arch", ARCHS)
def test_only_the_last_max_len_items_are_encoded(arch: str) -> None:
    model = make(arch)
    long = batch([MAX_LEN + 5, MAX_LEN + 2], width=MAX_LEN + 5)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(long), model.encode(long[:, -MAX_LEN:]))


@pytest.mark.parametrize("arch", ARCHS)
def test_empty_history_gives_finite_vectors(arch: str) -> None:
    model = make(arch)
    with torch.no_grad():
        assert torch.isfinite(model.encode(batch([0, 3]))).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trip_rebuilds_the_same_model(arch: str) -> None:
    model = make(arch, dropout=0.1, heads=2)
    rebuilt = build_model(asdict(model.config))
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    seqs = batch([5, 12])
    assert rebuilt.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.encode(seqs), model.encode(seqs))


def test_padding_row_of_item_embeddings_is_zero() -> None:
    model = make("sasrec")
    assert torch.count_nonzero(model.item_embeddings()[0]) == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"arch": "gru", "n_items": 5}, "arch"),
        ({"arch": "sasrec", "n_items": 5, "intents": 2}, "unknown keys"),
        ({"arch": "sasrec"}, "n_items"),
        ({"arch": "sasrec", "n_items": 5, "dim": 10, "heads": 3}, "heads"),
        ({"arch": "disen", "n_items": 5, "intents": 0}, "intents"),
        ({"arch": "disen", "n_items": 5, "temperature": 0.0}, "temperature"),
        ({"arch": "sasrec", "n_items": 5, "attention_dropout": 1.0}, "attention_dropout"),
    ],
)
def test_bad_configs_are_rejected_by_name(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(config)


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_dropout_follows_dropout_unless_set(arch: str) -> None:
    """With every other dropout off, a training-mode pass is random only through attention
    dropout: on by default at `dropout`'s rate in the attention alone, off at 0."""
    seqs = batch([12, 7, 3])
    attention_only = make(arch, dropout=0.0, attention_dropout=0.5).train()
    first, second = attention_only.encode(seqs), attention_only.encode(seqs)
    assert not torch.allclose(first, second)
    off = make(arch, dropout=0.0, attention_dropout=0.0)
    expected = off.encode(seqs)
    torch.testing.assert_close(off.train().encode(seqs), expected)
    follows = make(arch, dropout=0.3).train()
    assert not torch.allclose(follows.encode(seqs), follows.encode(seqs))
    set_off = make(arch, dropout=0.3, attention_dropout=0.0)
    assert all(block.attn.attention_dropout == 0.0 for block in set_off.blocks)
    assert all(block.attn.attention_dropout == 0.3 for block in follows.blocks)


def test_a_searched_trunk_takes_its_attention_dropout_from_the_config() -> None:
    """Only attention dropout is on: a searched trunk with an attention layer is random in
    training mode at 0.5 and deterministic at 0, like the hand-designed blocks."""
    seqs = batch([12, 7, 3])
    on = make("disen", dropout=0.0, attention_dropout=0.5, trunk=SEARCHED_TRUNK).train()
    assert not torch.allclose(on.encode(seqs), on.encode(seqs))
    off = make("disen", dropout=0.0, attention_dropout=0.0, trunk=SEARCHED_TRUNK)
    expected = off.encode(seqs)
    torch.testing.assert_close(off.train().encode(seqs), expected)
    assert make("disen", dropout=0.3, trunk=SEARCHED_TRUNK).searched.attention_dropout == 0.3


def test_disen_assignments_are_distributions_over_intents() -> None:
    model = make("disen")
    assert isinstance(model, DisenSeq)
    with torch.no_grad():
        assign = model.assignments(model.hidden(batch([12, 6])))
    assert assign.shape == (2, MAX_LEN, 3)
    torch.testing.assert_close(assign.sum(-1), torch.ones(2, MAX_LEN))


def test_max_intent_scores_gradient_matches_autograd_of_max() -> None:
    torch.manual_seed(3)
    users = torch.randn(6, 3, 5, dtype=torch.double, requires_grad=True)
    items = torch.randn(9, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(max_intent_scores, (users, items))
    torch.testing.assert_close(
        max_intent_scores(users, items), torch.einsum("pkd,nd->pkn", users, items).amax(1)
    )
