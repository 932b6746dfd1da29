"""The encoder contract shared by training, evaluation and export, and the SASRec trunk pieces.

Every encoder maps left-padded id sequences (0 = padding) to K intent vectors per user; the
score of an item is the max over intents of the dot product with its (tied) item embedding.
Masks and positions are built from tensors only, so the modules trace to ONNX with dynamic batch
and sequence axes.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from training.architecture import Architecture
from training.config import EncoderConfig
from training.models.layers import feed_forward, multi_head_attention
from training.models.searched import ArchitectureTrunk


def positions(item_seq: Tensor, max_len: int) -> Tensor:
    """Position index of every column, counted from the right: the last column is `max_len - 1`.

    Counting from the right makes a sequence's positions independent of how much left padding
    it carries (left-padding invariance). (B, L) -> (B, L) int64.
    """
    ones = torch.ones_like(item_seq)
    from_left = ones.cumsum(1)
    length = ones.sum(1, keepdim=True)
    return from_left - length + (max_len - 1)


def attention_mask(item_seq: Tensor) -> Tensor:
    """(B, L) -> (B, L, L) bool, True where query t may attend key s.

    Causal (s <= t) and only real keys; every query also sees itself so that padding queries
    never get an all-masked row (their outputs are discarded, real queries never see them).
    """
    index = torch.ones_like(item_seq).cumsum(1)
    causal = index.unsqueeze(1) <= index.unsqueeze(2)
    real_key = (item_seq != 0).unsqueeze(1)
    diagonal = index.unsqueeze(1) == index.unsqueeze(2)
    return causal & (real_key | diagonal)


class CausalSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention under a plain boolean mask."""

    def __init__(self, dim: int, heads: int, attention_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        # three projections rather than one split in three: Split's form differs across opsets
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.attention_dropout = attention_dropout

    def forward(
        self, x: Tensor, mask: Tensor, *, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """-> (output (B, L, D), attention weights (B, heads, L, L) if `need_weights`)."""
        context, weights = multi_head_attention(
            self.query(x),
            self.key(x),
            self.value(x),
            mask,
            heads=self.heads,
            dropout=self.attention_dropout if self.training else 0.0,
            need_weights=need_weights,
        )
        return self.out(context), weights


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, attention_dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = feed_forward(dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, mask: Tensor, *, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """-> (output, the attention weights of the block if `need_weights`)."""
        attended, weights = self.attn(self.attn_norm(x), mask, need_weights=need_weights)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ffn(self.ffn_norm(x))), weights


class SequenceEncoder(nn.Module):
    """Base of every encoder: a SASRec trunk over tied item embeddings.

    Subclasses implement `encode`; `hidden` (per-position trunk states) is shared.
    """

    arch: ClassVar[str] = ""
    config: EncoderConfig

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.item_embedding = nn.Embedding(config.n_items + 1, dim, padding_idx=0)
        self.position_embedding = nn.Embedding(config.max_len, dim)
        self.embed_dropout = nn.Dropout(config.dropout)
        # The searched trunk runs `trunk_architecture`; the supernet (training/search) swaps
        # in its own module and sets the architecture it trains before each step.
        self.trunk_architecture: Architecture | None = None
        self.searched: ArchitectureTrunk | None = None
        self.blocks = nn.ModuleList()
        if config.trunk is not None:
            self.trunk_architecture = Architecture.from_dict(config.trunk)
            self.searched = ArchitectureTrunk.for_architecture(
                self.trunk_architecture,
                dim,
                config.heads,
                config.dropout,
                config.attention_dropout_rate,
            )
        else:
            self.blocks.extend(
                Block(dim, config.heads, config.dropout, config.attention_dropout_rate)
                for _ in range(config.layers)
            )
        self.final_norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item_embedding.weight, std=dim**-0.5)
        nn.init.normal_(self.position_embedding.weight, std=1.0)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    @property
    def n_intents(self) -> int:
        return 1

    def truncate(self, item_seq: Tensor) -> Tensor:
        """Only the last `max_len` positions are ever encoded."""
        return item_seq[:, -self.config.max_len :]

    def hidden(self, item_seq: Tensor) -> Tensor:
        """Per-position trunk outputs, causal: (B, L) -> (B, L, D); requires L <= max_len.

        Padding rows are zeroed; position t depends only on real items at positions <= t.
        """
        return self._trunk(item_seq, need_attention=False)[0]

    def _trunk(self, item_seq: Tensor, *, need_attention: bool = True) -> tuple[Tensor, Tensor]:
        """-> (hidden (B, L, D), the last block's attention from the last position, averaged
        over heads (B, L); uniform over the real positions when there is no block or when
        `need_attention` is off)."""
        real = (item_seq != 0).unsqueeze(-1).to(self.item_embedding.weight.dtype)
        x = self.item_embedding(item_seq) * math.sqrt(self.config.dim)
        x = x + self.position_embedding(positions(item_seq, self.config.max_len))
        x = self.embed_dropout(x) * real
        mask = attention_mask(item_seq)
        last_attention = real[..., 0] / real[..., 0].sum(1, keepdim=True).clamp(min=1.0)
        if self.searched is not None:
            assert self.trunk_architecture is not None
            x, weights = self.searched(x, mask, real, self.trunk_architecture)
            if weights is not None:
                last_attention = weights
            return self.final_norm(x) * real, last_attention
        for index, block in enumerate(self.blocks):
            last_block = index == len(self.blocks) - 1
            x, weights = block(x, mask, need_weights=need_attention and last_block)
            x = x * real
            if weights is not None:
                last_attention = weights[:, :, -1, :].mean(1)
        return self.final_norm(x) * real, last_attention

    def encode(self, item_seq: Tensor) -> Tensor:
        """(B, L) left-padded int64 -> (B, K, D) user intent vectors."""
        raise NotImplementedError

    def explain(self, item_seq: Tensor) -> tuple[Tensor, Tensor]:
        """`encode` with what it read: (B, L) -> (user vectors (B, K, D), history weights
        (B, K, L')), L' = min(L, max_len), the weight of each of the last L' positions in
        intent k (0 on padding); from weights the model computes anyway, no second model."""
        raise NotImplementedError

    def forward(self, item_seq: Tensor) -> Tensor:
        return self.encode(item_seq)

    def item_embeddings(self) -> Tensor:
        """(N + 1, D); row 0 is the padding row."""
        return self.item_embedding.weight

    def score_all(self, item_seq: Tensor) -> Tensor:
        """(B, L) -> (B, N + 1): max over intents of <u_k, e_i>."""
        return max_intent_scores(self.encode(item_seq), self.item_embeddings())


def max_intent_scores(users: Tensor, items: Tensor) -> Tensor:
    """(..., K, D) x (C, D) -> (..., C): the score of an item is its best intent's dot product."""
    if users.shape[-2] == 1:
        return users[..., 0, :] @ items.T
    flat = users.reshape(-1, users.shape[-2], users.shape[-1])
    return _MaxOverIntents.apply(flat, items).reshape(*users.shape[:-2], items.shape[0])


class _MaxOverIntents(torch.autograd.Function):
    """max_k users[:, k] @ items.T with the gradient routed to the winning intent only.

    Autograd through `amax`/`maximum` over a (P, K, C) score tensor spends more time in
    tie-handling elementwise passes than in the K products themselves; here each k costs one
    product forward and two backward plus a mask multiply.
    """

    @staticmethod
    def forward(ctx: Any, users: Tensor, items: Tensor) -> Tensor:
        # (K, P, C): reducing the outer axis is a vectorised elementwise pass
        stacked = torch.stack([users[:, k] @ items.T for k in range(users.shape[1])])
        scores, winner = stacked.max(dim=0)
        ctx.save_for_backward(users, items, winner)
        return scores

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        users, items, winner = ctx.saved_tensors
        grad_users = []
        grad_items = torch.zeros_like(items)
        for k in range(users.shape[1]):
            routed = grad * (winner == k)
            grad_users.append(routed @ items)
            grad_items += routed.T @ users[:, k]
        return torch.stack(grad_users, dim=1), grad_items
