"""SASRec (Kang & McAuley, 2018): a causal self-attention encoder with one user vector."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from training.config import SASRecConfig
from training.models.base import SequenceEncoder


class SASRec(SequenceEncoder):
    """Item embedding (scaled by sqrt(D), padding row 0) + learned positions + pre-LN causal blocks.

    The user vector is the trunk output at the last position; item scores use the same (tied)
    item embedding table. Pre-LN rather than the paper's post-LN: it is what the reference
    implementation effectively does (LayerNorm before attention and FFN, a final LayerNorm), and
    it trains without warm-up at lr 1e-3.
    """

    arch: ClassVar[str] = "sasrec"
    config: SASRecConfig

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__(config)

    def encode(self, item_seq: Tensor) -> Tensor:
        return self.hidden(self.truncate(item_seq))[:, -1:, :]

    def explain(self, item_seq: Tensor) -> tuple[Tensor, Tensor]:
        """The weights: how the last position attends to the history in the last block."""
        hidden, last_attention = self._trunk(self.truncate(item_seq))
        return hidden[:, -1:, :], last_attention.unsqueeze(1)
