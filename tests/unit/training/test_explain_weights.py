"""`explain`: the encoder's user vectors with the weights it read the history with."""

from __future__ import annotations

import pytest
import torch

from training.models import build_model

SEQUENCES = torch.tensor(
    [[0, 0, 0, 5, 6, 7, 8, 9], [0, 0, 0, 0, 0, 0, 0, 3], [1, 2, 3, 4, 5, 6, 7, 8]]
)


def _model(arch: str):
    config = {"arch": arch, "n_items": 50, "dim": 16, "layers": 2, "heads": 2, "dropout": 0.1,
              "max_len": 8}  # fmt: skip
    if arch == "disen":
        config |= {"intents": 3, "temperature": 0.1}
    torch.manual_seed(0)
    return build_model(config).eval()


@pytest.mark.parametrize("arch", ["sasrec", "disen"])
def test_explain_returns_encode_and_weights_that_live_on_real_positions(arch: str) -> None:
    model = _model(arch)
    with torch.no_grad():
        vectors, weights = model.explain(SEQUENCES)
        encoded = model.encode(SEQUENCES)
    torch.testing.assert_close(vectors, encoded)
    assert weights.shape == (3, model.n_intents, 8)
    assert (weights >= 0).all()
    assert (weights[:, :, :3][SEQUENCES[:, :3].unsqueeze(1).expand(-1, model.n_intents, -1) == 0]
            == 0).all()  # fmt: skip
    total = weights.sum(-1).sum(-1) if arch == "disen" else weights.sum(-1)[:, 0]
    # SASRec: one attention distribution; DisenSeq: eq. 6's weights share one unit of mass
    torch.testing.assert_close(total, torch.ones(3))


@pytest.mark.parametrize("arch", ["sasrec", "disen"])
def test_explain_reads_only_the_last_max_len_positions(arch: str) -> None:
    model = _model(arch)
    longer = torch.cat([torch.full((3, 4), 11), SEQUENCES], dim=1)
    with torch.no_grad():
        vectors, weights = model.explain(longer)
        short_vectors, short_weights = model.explain(SEQUENCES[:, -8:])
    assert weights.shape[-1] == 8
    torch.testing.assert_close(weights, short_weights)
    torch.testing.assert_close(vectors, short_vectors)
