"""DisenSeq: the intention-disentangled sequence encoder of AutoDisenSeq (Wang et al., TOIS 2025,
Section 4.1.2), on a SASRec trunk, without the architecture search of Section 4.2.

Reading of the extracted equations (z_i = trunk output at position i, m = last real position):

eq. 4  q_i^(k) = softmax_k( cos(LN1(z_i), LN2(c_k)) / temperature ).
       The paper writes (1/sqrt(D)) LN1(z_i) . LN2(c_k) and says it means a cosine ("we use cosine
       instead of dot product to reduce mode collapse"). A LayerNorm-ed vector (unit gain) has
       norm sqrt(D), so that product is sqrt(D) * cosine, i.e. a cosine at temperature
       1/sqrt(D). We normalise explicitly (the LayerNorm gains are learned, so the norm drifts)
       and expose the temperature (default 0.1 ~ 1/sqrt(64)).
eq. 5  q_i = softmax_i( z'_i . LN3(z_M) / sqrt(D) ) over the real positions i <= m, with
       z_M = alpha_m + z_m + b'  and  z'_i = u_i + ReLU(W u_i + b),  u_i = LN4(alpha_i + z_i),
       alpha a second learned positional embedding. This is legible in the extraction and taken
       as written; padding positions are masked out of the softmax.
eq. 6  phi^(k) = LN5( beta_k + sum_i q_i^(k) q_i z_i ), with one bias set beta for input
       sequences and another (beta_future) for the reversed future sequences of the S2S loss, as
       the paper says. Because sum_k q_i^(k) = 1 and sum_i q_i = 1, an intent with no mass in
       the sequence falls back to LN5(beta_k): the paper's "temporary noise vector".

The score of item i is max_k <phi^(k), e_i> with the tied item embedding table.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.config import DisenConfig
from training.models.base import SequenceEncoder, attention_mask, positions


class DisenSeq(SequenceEncoder):
    arch: ClassVar[str] = "disen"
    config: DisenConfig

    def __init__(self, config: DisenConfig) -> None:
        super().__init__(config)
        dim, k = config.dim, config.intents
        self.prototypes = nn.Parameter(torch.randn(k, dim))
        self.assign_norm_z = nn.LayerNorm(dim)  # LN1
        self.assign_norm_c = nn.LayerNorm(dim)  # LN2
        self.relation_position = nn.Embedding(config.max_len, dim)  # alpha
        nn.init.normal_(self.relation_position.weight, std=dim**-0.5)
        self.relation_norm_last = nn.LayerNorm(dim)  # LN3
        self.relation_norm_key = nn.LayerNorm(dim)  # LN4
        self.relation_ffn = nn.Linear(dim, dim)  # W, b
        self.relation_last_bias = nn.Parameter(torch.zeros(dim))  # b'
        self.intent_bias = nn.Parameter(torch.zeros(k, dim))  # beta (input sequences)
        self.intent_bias_future = nn.Parameter(torch.zeros(k, dim))  # beta (label sequences)
        self.output_norm = nn.LayerNorm(dim)  # LN5

    @property
    def n_intents(self) -> int:
        return self.config.intents

    def encode(self, item_seq: Tensor) -> Tensor:
        item_seq = self.truncate(item_seq)
        return self._disentangle(item_seq, self.hidden(item_seq), last_only=True, future=False)[0]

    def explain(self, item_seq: Tensor) -> tuple[Tensor, Tensor]:
        """The weights: eq. 6's q_i^(k) q_i, what each position adds to intent k."""
        item_seq = self.truncate(item_seq)
        vectors, weights = self._disentangle(
            item_seq, self.hidden(item_seq), last_only=True, future=False
        )
        return vectors, weights[:, 0]

    def encode_future(self, reversed_future: Tensor) -> Tensor:
        """Encode a reversed future subsequence (label side of S2S): (B, L) -> (B, K, D)."""
        item_seq = self.truncate(reversed_future)
        return self._disentangle(item_seq, self.hidden(item_seq), last_only=True, future=True)[0]

    def encode_all(self, item_seq: Tensor) -> tuple[Tensor, Tensor]:
        """Intent vectors of every prefix at once: (B, L) -> ((B, L, K, D), hidden (B, L, D)).

        Row t equals `encode` of the window ending at t (same columns, so same positions); the
        trunk is causal and eq. 5 is masked to positions <= t, so nothing after t leaks in.
        """
        hidden = self.hidden(item_seq)
        return self._disentangle(item_seq, hidden, last_only=False, future=False)[0], hidden

    def assignments(self, z: Tensor) -> Tensor:
        """eq. 4: soft assignment of positions to intents, (..., D) -> (..., K)."""
        z_n = F.normalize(self.assign_norm_z(z), dim=-1)
        c_n = F.normalize(self.assign_norm_c(self.prototypes), dim=-1)
        return torch.softmax(z_n @ c_n.T / self.config.temperature, dim=-1)

    def _disentangle(
        self, item_seq: Tensor, z: Tensor, *, last_only: bool, future: bool
    ) -> tuple[Tensor, Tensor]:
        """-> (intent vectors (B, K, D) or (B, L, K, D), eq. 6's weights (B, Q, K, L))."""
        alpha = self.relation_position(positions(item_seq, self.config.max_len))
        assign = self.assignments(z)  # (B, L, K)
        keys = self.relation_norm_key(alpha + z)
        keys = keys + torch.relu(self.relation_ffn(keys))  # z'
        last = alpha + z + self.relation_last_bias  # z_M for every possible last position
        if last_only:
            last = last[:, -1:, :]
            index = torch.ones_like(item_seq).cumsum(1)
            is_last = index == index[:, -1:]
            # the last column is always allowed so that an all-padding row stays finite
            mask = ((item_seq != 0) | is_last).unsqueeze(1)  # (B, 1, L)
        else:
            mask = attention_mask(item_seq)  # (B, L, L)
        scores = self.relation_norm_last(last) @ keys.transpose(1, 2) * self.config.dim**-0.5
        relation = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # eq. 5
        batch, queries, length = relation.shape
        weights = relation.unsqueeze(2) * assign.transpose(1, 2).unsqueeze(1)  # (B, Q, K, L)
        # one (Q*K, L) @ (L, D) product per user; broadcasting z over Q would copy it Q times
        aggregated = (weights.reshape(batch, -1, length) @ z).reshape(
            batch, queries, -1, z.shape[-1]
        )
        bias = self.intent_bias_future if future else self.intent_bias
        out = self.output_norm(bias + aggregated)  # eq. 6
        return (out[:, 0] if last_only else out), weights
