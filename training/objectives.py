"""Training objectives: next-item losses (CE / BCE / sampled softmax) and AutoDisenSeq's Seq2Seq.

`build_objective(model_config, objective_config)` returns a callable
`objective(model, seqs) -> (loss, {name: float})` over left-padded *training* windows (B, T);
`objective.window` is how many recent items per user it wants.

SASRec: every position of the last `max_len + 1` items predicts the next one.

DisenSeq (paper Section 4.1.3, eq. 7-13), with these choices:
- Cut: one random cut per user inside its last `future_len` training items (at least one item on
  each side). The earlier sequence is the `max_len` items before the cut, the future sequence
  the (at most `future_len`) items after it, reversed (eq. 12 uses s_{m:i+1} so that the items
  nearest the cut get the weight of "last position").
- S2I (eq. 9): the paper's mini-batch elements are (sequence, cut) pairs; we take every
  earlier cut inside the window as a further such pair (each prefix predicts its next item, the
  last one predicts the first future item). `encode_all` gets all prefixes in one pass, the
  trick SASRec uses, which gives the S2I loss many times more supervision per step. Only a
  random `s2i_share` (default 1/K) of the prefixes is scored, plus always the cut: the K-intent
  catalog softmax then costs what SASRec's does (all prefixes: 2.7x the epoch time, no better
  after 15 epochs). Logits are max_k <phi^(k), e_i> * s2i_scale over the whole catalog (our
  reading of eq. 9, whose extracted denominator sums over in-batch items); `loss="sampled"` /
  `"bce"` swap the softmax for those losses.
  s2i_scale defaults to 1, not the paper's 1/sqrt(D): the paper motivates 1/sqrt(D) by the LN
  output's norm sqrt(D), but our item embeddings start at norm ~1 (std D^-1/2, as the trunk
  scales inputs by sqrt(D)), so the product is already O(1) and the extra 1/sqrt(D) flattens the
  softmax (ml-100k, D=64, 15 epochs: valid NDCG@10 0.026 with 1/sqrt(D) vs 0.037 with 1).
- S2S (eq. 10-12): per (user n, intent k) an in-batch softmax: the positive is the future
  vector phi^(k)(future_n), the candidates all B*K future vectors, logits scaled by 1/sqrt(D)
  as in the paper (both sides are LayerNorm outputs of norm ~sqrt(D)).
  Gradients flow through both sides (same network, the future side with its own beta).
- Lambda filter (eq. 10): keep the ceil(lambda * N * K) smallest of the N*K S2S terms.
- Reduction: means rather than the paper's sums (S2I over predicted positions, S2S over kept
  terms), so that the loss scale and `s2s_weight` do not depend on the batch size.
  Total = S2I + s2s_weight * S2S (eq. 13 has weight 1; the weight is a config option).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from training.config import DisenConfig, EncoderConfig, ObjectiveConfig
from training.models import SequenceEncoder, max_intent_scores, model_config

# BCE negatives are redrawn this many times when they hit the user's own items; leftovers are
# dropped from the loss rather than looping on a data-dependent condition
NEGATIVE_REDRAWS = 3


def lambda_filter(losses: Tensor, lam: float) -> Tensor:
    """Mask keeping the ceil(lam * numel) smallest entries of `losses` (eq. 10's threshold tau).

    Ties at the threshold are broken arbitrarily so that exactly that many are kept. The 1e-9
    guards against float products such as 0.3 * 40 = 12.000000000000002 rounding up.
    """
    if not 0.0 < lam <= 1.0:
        raise ValueError(f"lambda must be in (0, 1], got {lam}")
    flat = losses.detach().reshape(-1)
    keep = min(flat.numel(), math.ceil(lam * flat.numel() - 1e-9))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if keep > 0:
        mask[torch.topk(flat, keep, largest=False).indices] = True
    return mask.reshape(losses.shape)


def s2s_losses(present: Tensor, future: Tensor, scale: float) -> Tensor:
    """eq. 12 per (user, intent): (N, K, D) x (N, K, D) -> (N, K).

    Term (n, k) = -log softmax over the N*K in-batch future vectors of <present[n, k], .> * scale,
    the positive being future[n, k].
    """
    n, k, dim = present.shape
    logits = present.reshape(n * k, dim) @ future.reshape(n * k, dim).T * scale
    target = torch.arange(n * k, device=present.device)
    return F.cross_entropy(logits, target, reduction="none").reshape(n, k)


def next_item_loss(
    users: Tensor,
    targets: Tensor,
    items: Tensor,
    config: ObjectiveConfig,
    *,
    scale: float = 1.0,
    history: Tensor | None = None,
) -> Tensor:
    """Mean next-item loss of P predictions: users (P, K, D), targets (P,) in 1..N.

    ce: full softmax over the catalog. sampled: softmax over the batch's targets plus
    `negatives` uniform items, each logit corrected by -log(expected count of the item among the
    candidates) (logQ). bce: SASRec's sigmoid loss with `negatives` uniform items per positive
    that are not in `history` (P, H), the user's items.
    """
    n_items = items.shape[0] - 1
    if config.loss == "ce":
        # the padding row is left out rather than masked: smoothing would give it probability
        logits = max_intent_scores(users, items[1:]) * scale
        return F.cross_entropy(logits, targets - 1, label_smoothing=config.label_smoothing)
    if config.loss == "sampled":
        uniform = torch.randint(1, n_items + 1, (config.negatives,), device=targets.device)
        candidates, inverse = torch.unique(torch.cat([targets, uniform]), return_inverse=True)
        in_batch = torch.bincount(inverse[: targets.numel()], minlength=candidates.numel())
        expected = in_batch.to(users.dtype) + config.negatives / n_items
        logits = max_intent_scores(users, items[candidates]) * scale - expected.log()
        return F.cross_entropy(
            logits, inverse[: targets.numel()], label_smoothing=config.label_smoothing
        )
    negatives = _negatives_not_in(history, targets, config.negatives, n_items)
    positive = (users * items[targets].unsqueeze(1)).sum(-1).amax(-1) * scale
    negative = (users @ items[negatives.clamp(min=0)].transpose(1, 2)).amax(1) * scale
    negative_loss = (F.softplus(negative) * (negatives > 0)).sum(-1)
    return (F.softplus(-positive) + negative_loss).mean()


def _negatives_not_in(history: Tensor | None, targets: Tensor, count: int, n_items: int) -> Tensor:
    """(P, count) uniform item ids avoiding the row's history and target; 0 where none found."""
    forbidden = (
        targets.unsqueeze(1)
        if history is None
        else torch.cat([history, targets.unsqueeze(1)], dim=1)
    )
    negatives = torch.randint(1, n_items + 1, (targets.numel(), count), device=targets.device)
    for _ in range(NEGATIVE_REDRAWS):
        hit = (negatives.unsqueeze(-1) == forbidden.unsqueeze(1)).any(-1)
        redraw = torch.randint(1, n_items + 1, negatives.shape, device=targets.device)
        negatives = torch.where(hit, redraw, negatives)
    hit = (negatives.unsqueeze(-1) == forbidden.unsqueeze(1)).any(-1)
    return negatives.masked_fill(hit, 0)


def gather_columns(seqs: Tensor, columns: Tensor) -> Tensor:
    """seqs (B, T), columns (B, W) -> (B, W) with 0 (padding) where a column is out of range."""
    inside = (columns >= 0) & (columns < seqs.shape[1])
    return seqs.gather(1, columns.clamp(0, seqs.shape[1] - 1)).masked_fill(~inside, 0)


def _zero_loss(model: SequenceEncoder) -> Tensor:
    """A zero that still has a graph, for batches without a single prediction to make."""
    return model.item_embedding.weight.sum() * 0.0


def shared_padding(seqs: Tensor, keep: int) -> int:
    """How many leading columns of `seqs` (B, T) are padding in every row, leaving `keep`.

    Positions count from the right and padded keys are masked, so cutting them changes no real
    position's output. On short-history data (Amazon Beauty: 7 training actions a user) most of
    a 50-column window is padding: without it a SASRec step there is ~23 % faster, and a
    DisenSeq step, in batches by length (`shuffled_batches`), 3-4x.
    """
    real_columns = (seqs != 0).any(0)
    first = int(real_columns.int().argmax()) if bool(real_columns.any()) else seqs.shape[1]
    return max(0, min(first, seqs.shape[1] - keep))


class SASRecObjective:
    def __init__(self, model: EncoderConfig, config: ObjectiveConfig) -> None:
        self.max_len = model.max_len
        self.config = config
        self.window = self.max_len + 1

    def __call__(self, model: SequenceEncoder, seqs: Tensor) -> tuple[Tensor, dict[str, float]]:
        seqs = seqs[:, -self.window :]
        seqs = seqs[:, shared_padding(seqs, keep=2) :]
        inputs, targets = seqs[:, :-1], seqs[:, 1:]
        predict = (inputs != 0) & (targets != 0)
        if not bool(predict.any()):
            return _zero_loss(model), {"loss": 0.0, "predictions": 0.0}
        hidden = model.hidden(inputs)
        history = None
        if self.config.loss == "bce":
            history = seqs.unsqueeze(1).expand(-1, inputs.shape[1], -1)[predict]
        loss = next_item_loss(
            hidden[predict].unsqueeze(1),
            targets[predict],
            model.item_embeddings(),
            self.config,
            history=history,
        )
        return loss, {"loss": float(loss.detach()), "predictions": float(predict.sum())}


class DisenObjective:
    def __init__(self, model: EncoderConfig, config: ObjectiveConfig) -> None:
        self.max_len = model.max_len
        self.s2s_scale = 1.0 / math.sqrt(model.dim)
        self.config = config
        self.window = self.max_len + config.future_len
        intents = model.intents if isinstance(model, DisenConfig) else 1
        self.s2i_share = config.s2i_share if config.s2i_share is not None else 1.0 / intents

    def s2i_positions(self, predict: Tensor) -> Tensor:
        """A random `s2i_share` of each row's predictable prefixes, always with the cut (last)."""
        span = predict.shape[1]
        count = min(span, math.ceil(self.s2i_share * span - 1e-9))
        if count >= span:
            return predict
        draw = torch.rand(predict.shape, device=predict.device)
        draw[:, -1] = -1.0
        chosen = torch.zeros_like(predict)
        chosen.scatter_(1, torch.topk(draw, count, dim=1, largest=False).indices, True)
        return chosen & predict

    def cuts(self, seqs: Tensor) -> tuple[Tensor, Tensor]:
        """One random cut column per row within its last `future_len` items: (cut, usable) (B,).

        The earlier part is columns < cut, the future part columns >= cut; a row needs two real
        items to be usable.
        """
        width = seqs.shape[1]
        length = (seqs != 0).sum(1)
        low = torch.clamp(torch.clamp(width - length + 1, min=width - self.config.future_len), 1)
        choices = torch.clamp(width - low, min=1)
        offset = (torch.rand(seqs.shape[0], device=seqs.device) * choices).long()
        cut = low + torch.minimum(offset, choices - 1)
        return cut.clamp(max=width - 1), length >= 2

    def __call__(self, model: SequenceEncoder, seqs: Tensor) -> tuple[Tensor, dict[str, float]]:
        seqs = seqs[:, -self.window :]
        width = seqs.shape[1]
        cut, usable = self.cuts(seqs)
        span = min(self.max_len, width - 1)
        if span < 1 or not bool(usable.any()):
            return _zero_loss(model), {"loss": 0.0, "s2i": 0.0, "s2s": 0.0, "predictions": 0.0}
        steps = torch.arange(span, device=seqs.device)
        earlier_cols = (cut - span).unsqueeze(1) + steps
        earlier = gather_columns(seqs, earlier_cols) * usable.unsqueeze(1)
        targets = gather_columns(seqs, earlier_cols + 1)
        first = shared_padding(earlier, keep=1)
        earlier, targets = earlier[:, first:], targets[:, first:]
        predict = self.s2i_positions((earlier != 0) & (targets != 0))

        intents, _hidden = model.encode_all(earlier)  # (B, columns, K, D)
        history = None
        if self.config.loss == "bce":
            history = seqs.unsqueeze(1).expand(-1, earlier.shape[1], -1)[predict]
        s2i = next_item_loss(
            intents[predict],
            targets[predict],
            model.item_embeddings(),
            self.config,
            scale=self.config.s2i_scale,
            history=history,
        )
        stats = {"s2i": float(s2i.detach()), "predictions": float(predict.sum())}
        loss = s2i
        if not self.config.s2i_only and self.config.s2s_weight > 0:
            future_len = min(self.config.future_len, width - 1)
            reversed_cols = cut.unsqueeze(1) + torch.arange(
                future_len - 1, -1, -1, device=seqs.device
            )
            future = gather_columns(seqs, reversed_cols)[usable]
            present = intents[:, -1][usable]
            terms = s2s_losses(present, model.encode_future(future), self.s2s_scale)
            kept = lambda_filter(terms, self.config.s2s_lambda)
            s2s = terms[kept].mean()
            loss = s2i + self.config.s2s_weight * s2s
            stats |= {"s2s": float(s2s.detach()), "s2s_kept": float(kept.sum())}
        stats["loss"] = float(loss.detach())
        return loss, stats


Objective = SASRecObjective | DisenObjective


def build_objective(
    model: EncoderConfig | dict[str, Any], config: ObjectiveConfig | None = None
) -> Objective:
    """The loss for the encoder `model` (its config, or a checkpoint's config dict)."""
    cfg = model if isinstance(model, EncoderConfig) else model_config(model)
    config = config or ObjectiveConfig()
    if cfg.arch == "disen":
        return DisenObjective(cfg, config)
    return SASRecObjective(cfg, config)
