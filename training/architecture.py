"""A searched trunk architecture (AutoDisenSeq, Section 4.2.1-4.2.2), as a small value (torch-free).

Layer 0 is the embedded sequence (item + position embeddings); hidden layers 1..W each read
earlier layers through connections, each connection applying one primitive operation:
- an *addition layer* sums its inputs: the previous layer through a non-zero op (Constraint 1,
  the chain) plus one connection from any earlier layer, whose op may be `zero` (no connection);
- an *attention layer* computes Attend(Q, K) V with Q from the previous layer through a non-zero
  op (Constraint 1) and K and V from one shared earlier layer (Constraint 2), each through its own
  non-zero op.
With b operations this leaves b(b-1)k + (b-1)^3 k choices for a layer with k earlier layers,
eq. 19. The embedded sequence counts as an addition layer (it is the sum of two embeddings) when
a connection's context is named.

A connection's *context* (Section 4.2.4) is its source layer's type, its target layer's type and,
for an attention target, whether it feeds the query, key or value: eight contexts. The supernet
shares a connection's parameters only with the same connection (target, source, op) in the same
context; `Connection.key` names that parameter set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class Op(StrEnum):
    ZERO = "zero"
    IDENTITY = "identity"
    LINEAR = "linear"
    FFN = "ffn"  # Linear, GELU, dropout, Linear: SASRec's point-wise feed-forward


NONZERO_OPS = (Op.IDENTITY, Op.LINEAR, Op.FFN)
PARAMETRIC_OPS = (Op.LINEAR, Op.FFN)


class LayerType(StrEnum):
    ADDITION = "addition"
    ATTENTION = "attention"


class Role(StrEnum):
    INPUT = "input"  # into an addition layer
    QUERY = "query"
    KEY = "key"
    VALUE = "value"


@dataclass(frozen=True)
class AdditionLayer:
    op: Op  # on the previous layer
    extra_source: int  # any earlier layer; 0 = the embedded sequence
    extra_op: Op  # zero: no second input

    type = LayerType.ADDITION


@dataclass(frozen=True)
class AttentionLayer:
    query_op: Op  # on the previous layer
    memory_source: int  # key and value read the same layer
    key_op: Op
    value_op: Op

    type = LayerType.ATTENTION


Layer = AdditionLayer | AttentionLayer


@dataclass(frozen=True)
class Connection:
    target: int
    source: int
    op: Op
    source_type: LayerType
    role: Role

    @property
    def context(self) -> tuple[LayerType, Role]:
        """Source type x (target type, role): the role names the target type."""
        return self.source_type, self.role

    @property
    def key(self) -> str:
        """The name of this connection's parameters (no dots: a torch module name)."""
        return f"t{self.target}_s{self.source}_{self.op}_{self.source_type}_{self.role}"


class ArchitectureError(ValueError):
    pass


def _op(value: Any, where: str, nonzero: bool) -> Op:
    try:
        op = Op(value)
    except ValueError:
        raise ArchitectureError(
            f"{where}: unknown operation {value!r}, expected one of {[o.value for o in Op]}"
        ) from None
    if nonzero and op is Op.ZERO:
        raise ArchitectureError(f"{where}: must not be 'zero' (the chain needs this connection)")
    return op


def _source(value: Any, where: str, layer: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < layer:
        raise ArchitectureError(
            f"{where}: must be an earlier layer, 0..{layer - 1} (0 = embeddings), got {value!r}"
        )
    return value


@dataclass(frozen=True)
class Architecture:
    """Hidden layers 1..W, in order; invalid choices are refused with the layer and field named."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ArchitectureError("an architecture needs at least one hidden layer")
        for index, layer in enumerate(self.layers, start=1):
            where = f"layer {index}"
            if isinstance(layer, AdditionLayer):
                _op(layer.op, f"{where} op", nonzero=True)
                _source(layer.extra_source, f"{where} extra_source", index)
                _op(layer.extra_op, f"{where} extra_op", nonzero=False)
            elif isinstance(layer, AttentionLayer):
                _op(layer.query_op, f"{where} query_op", nonzero=True)
                _source(layer.memory_source, f"{where} memory_source", index)
                _op(layer.key_op, f"{where} key_op", nonzero=True)
                _op(layer.value_op, f"{where} value_op", nonzero=True)
            else:
                raise ArchitectureError(f"{where}: not an addition or attention layer: {layer!r}")

    @property
    def depth(self) -> int:
        return len(self.layers)

    def layer_type(self, index: int) -> LayerType:
        """Type of layer `index` (0 = the embedded sequence, an addition)."""
        return LayerType.ADDITION if index == 0 else self.layers[index - 1].type

    def connections(self, target: int) -> list[Connection]:
        """The connections into hidden layer `target` (1-based), zero ops left out."""
        layer = self.layers[target - 1]
        previous = target - 1
        if isinstance(layer, AdditionLayer):
            wanted = [
                (previous, layer.op, Role.INPUT),
                (layer.extra_source, layer.extra_op, Role.INPUT),
            ]
        else:
            memory = layer.memory_source
            wanted = [
                (previous, layer.query_op, Role.QUERY),
                (memory, layer.key_op, Role.KEY),
                (memory, layer.value_op, Role.VALUE),
            ]
        return [
            Connection(target, source, op, self.layer_type(source), role)
            for source, op, role in wanted
            if op is not Op.ZERO
        ]

    def all_connections(self) -> list[Connection]:
        return [c for target in range(1, self.depth + 1) for c in self.connections(target)]

    def describe(self) -> str:
        """One line, e.g. `attn(q linear, kv 0 linear/identity) | add(identity + 1 ffn)`."""
        parts = []
        for layer in self.layers:
            if isinstance(layer, AdditionLayer):
                extra = (
                    "" if layer.extra_op is Op.ZERO else f" + {layer.extra_source} {layer.extra_op}"
                )
                parts.append(f"add({layer.op}{extra})")
            else:
                parts.append(
                    f"attn(q {layer.query_op}, kv {layer.memory_source} "
                    f"{layer.key_op}/{layer.value_op})"
                )
        return " | ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for layer in self.layers:
            if isinstance(layer, AdditionLayer):
                rows.append(
                    {
                        "type": "addition",
                        "op": str(layer.op),
                        "extra_source": layer.extra_source,
                        "extra_op": str(layer.extra_op),
                    }
                )
            else:
                rows.append(
                    {
                        "type": "attention",
                        "query_op": str(layer.query_op),
                        "memory_source": layer.memory_source,
                        "key_op": str(layer.key_op),
                        "value_op": str(layer.value_op),
                    }
                )
        return {"layers": rows}

    @classmethod
    def from_dict(cls, value: Any) -> Architecture:
        if not isinstance(value, dict) or not isinstance(value.get("layers"), list):
            raise ArchitectureError('an architecture is a JSON object {"layers": [...]}')
        fields = {
            "addition": ("op", "extra_source", "extra_op"),
            "attention": ("query_op", "memory_source", "key_op", "value_op"),
        }
        layers: list[Layer] = []
        for index, row in enumerate(value["layers"], start=1):
            where = f"layer {index}"
            if not isinstance(row, dict) or row.get("type") not in fields:
                raise ArchitectureError(f'{where}: needs "type": "addition" or "attention"')
            expected = fields[row["type"]]
            wrong = sorted(set(row) - {"type", *expected})
            missing = [name for name in expected if name not in row]
            if wrong or missing:
                raise ArchitectureError(
                    f"{where} ({row['type']}): fields {list(expected)} expected"
                    + (f"; unknown {wrong}" if wrong else "")
                    + (f"; missing {missing}" if missing else "")
                )
            if row["type"] == "addition":
                layers.append(
                    AdditionLayer(
                        _op(row["op"], f"{where} op", nonzero=True),
                        _source(row["extra_source"], f"{where} extra_source", index),
                        _op(row["extra_op"], f"{where} extra_op", nonzero=False),
                    )
                )
            else:
                layers.append(
                    AttentionLayer(
                        _op(row["query_op"], f"{where} query_op", nonzero=True),
                        _source(row["memory_source"], f"{where} memory_source", index),
                        _op(row["key_op"], f"{where} key_op", nonzero=True),
                        _op(row["value_op"], f"{where} value_op", nonzero=True),
                    )
                )
        return cls(tuple(layers))


def load_architecture(path: Path) -> Architecture:
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ArchitectureError(f"{path}: no such architecture file") from exc
    except json.JSONDecodeError as exc:
        raise ArchitectureError(f"{path}: not JSON ({exc})") from exc
    try:
        return Architecture.from_dict(value)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{path}: {exc}") from exc


def save_architecture(architecture: Architecture, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(architecture.to_dict(), indent=2) + "\n")
    return path


def choices_per_layer(earlier_layers: int, n_ops: int = len(Op)) -> int:
    """eq. 19's factor for a layer with k earlier layers: b(b-1)k + (b-1)^3 k."""
    b, k = n_ops, earlier_layers
    return b * (b - 1) * k + (b - 1) ** 3 * k


def space_size(depth: int, n_ops: int = len(Op)) -> int:
    """Architectures with `depth` hidden layers under both constraints (eq. 19)."""
    return math.prod(choices_per_layer(k, n_ops) for k in range(1, depth + 1))
