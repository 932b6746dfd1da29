"""The trunk of a searched architecture (training/architecture.py), and the supernet holding all.

One module computes any architecture from parameters looked up by name: a connection's
parameters under `Connection.key` (target, source, op, context), each layer's LayerNorm under
its index and type. A standalone trunk holds the parameters of one architecture; the supernet
holds those of every architecture of a depth, so a path of the supernet and a standalone trunk
given the same weights compute the same function (tests/training/test_arch_search.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from training.architecture import (
    PARAMETRIC_OPS,
    AdditionLayer,
    Architecture,
    Connection,
    LayerType,
    Op,
    Role,
)
from training.models.layers import feed_forward, multi_head_attention


def _operation(op: Op, dim: int, dropout: float) -> nn.Module:
    if op is Op.LINEAR:
        return nn.Linear(dim, dim)
    return feed_forward(dim, dropout)


def _norm_key(index: int, layer_type: LayerType) -> str:
    return f"l{index}_{layer_type}"


def every_connection(depth: int) -> Iterable[Connection]:
    """Every parametric connection any architecture of `depth` hidden layers can have."""
    for target in range(1, depth + 1):
        for source in range(target):
            source_types = [LayerType.ADDITION] if source == 0 else list(LayerType)
            for source_type in source_types:
                for role in Role:
                    for op in PARAMETRIC_OPS:
                        yield Connection(target, source, op, source_type, role)


class ArchitectureTrunk(nn.Module):
    """Computes an architecture over (B, L, D) inputs with a causal mask, left padding zeroed."""

    def __init__(
        self,
        connections: Iterable[Connection],
        norms: Iterable[str],
        dim: int,
        heads: int,
        dropout: float,
        attention_dropout: float,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.ops = nn.ModuleDict(
            {c.key: _operation(c.op, dim, dropout) for c in connections if c.op in PARAMETRIC_OPS}
        )
        self.norms = nn.ModuleDict({key: nn.LayerNorm(dim) for key in norms})
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def for_architecture(
        cls,
        architecture: Architecture,
        dim: int,
        heads: int,
        dropout: float,
        attention_dropout: float,
    ) -> ArchitectureTrunk:
        norms = [_norm_key(i, layer.type) for i, layer in enumerate(architecture.layers, start=1)]
        return cls(architecture.all_connections(), norms, dim, heads, dropout, attention_dropout)

    @classmethod
    def supernet(
        cls, depth: int, dim: int, heads: int, dropout: float, attention_dropout: float
    ) -> ArchitectureTrunk:
        """Parameters for every architecture of `depth` hidden layers, shared by context."""
        norms = [_norm_key(i, t) for i in range(1, depth + 1) for t in LayerType]
        return cls(every_connection(depth), norms, dim, heads, dropout, attention_dropout)

    def _connect(self, connection: Connection, x: Tensor) -> Tensor:
        if connection.op is Op.IDENTITY:
            return x
        return self.ops[connection.key](x)

    def forward(
        self, x: Tensor, mask: Tensor, real: Tensor, architecture: Architecture
    ) -> tuple[Tensor, Tensor | None]:
        """-> (last layer (B, L, D), the last attention layer's weights from the last position
        averaged over heads (B, L), or None when the architecture has no attention layer)."""
        outputs = [x]
        last_attention = None
        for target, layer in enumerate(architecture.layers, start=1):
            inputs = [
                (c.role, self._connect(c, outputs[c.source]))
                for c in architecture.connections(target)
            ]
            if isinstance(layer, AdditionLayer):
                combined = sum(value for _, value in inputs)
            else:
                by_role = dict(inputs)
                combined, weights = multi_head_attention(
                    by_role[Role.QUERY],
                    by_role[Role.KEY],
                    by_role[Role.VALUE],
                    mask,
                    heads=self.heads,
                    dropout=self.attention_dropout if self.training else 0.0,
                    need_weights=True,
                )
                assert weights is not None
                last_attention = weights[:, :, -1, :].mean(1)
            norm = self.norms[_norm_key(target, layer.type)]
            outputs.append(norm(self.dropout(combined)) * real)
        return outputs[-1], last_attention
