"""Sampling, mutating and crossing architectures of the search space (training/architecture.py).

Sampling is uniform over the constrained space: a layer's type is drawn in proportion to the
choices it has (eq. 19's two terms), then each choice uniformly.
"""

from __future__ import annotations

import numpy as np

from training.architecture import (
    NONZERO_OPS,
    AdditionLayer,
    Architecture,
    AttentionLayer,
    Layer,
    Op,
)


def random_layer(index: int, rng: np.random.Generator) -> Layer:
    """A uniformly drawn hidden layer `index` (1-based: `index` earlier layers to read)."""
    b = len(Op)
    additions = b * (b - 1) * index
    attentions = (b - 1) ** 3 * index

    def nonzero() -> Op:
        return NONZERO_OPS[int(rng.integers(len(NONZERO_OPS)))]

    if rng.random() < additions / (additions + attentions):
        extra_op = list(Op)[int(rng.integers(b))]
        return AdditionLayer(nonzero(), int(rng.integers(index)), extra_op)
    return AttentionLayer(nonzero(), int(rng.integers(index)), nonzero(), nonzero())


def random_architecture(depth: int, rng: np.random.Generator) -> Architecture:
    if depth < 1:
        raise ValueError(f"an architecture needs at least one hidden layer, got depth {depth}")
    return Architecture(tuple(random_layer(i, rng) for i in range(1, depth + 1)))


def mutate(architecture: Architecture, rng: np.random.Generator, rate: float) -> Architecture:
    """Each layer redrawn with probability `rate`; at least one layer is redrawn."""
    layers = list(architecture.layers)
    redraw = rng.random(len(layers)) < rate
    if not redraw.any():
        redraw[int(rng.integers(len(layers)))] = True
    for position in np.flatnonzero(redraw):
        layers[position] = random_layer(int(position) + 1, rng)
    return Architecture(tuple(layers))


def crossover(first: Architecture, second: Architecture, rng: np.random.Generator) -> Architecture:
    """Layer by layer from either parent: a layer's choices only name earlier layers, so any mix
    of two valid parents of the same depth is valid."""
    if first.depth != second.depth:
        raise ValueError(f"cannot cross depths {first.depth} and {second.depth}")
    take_first = rng.random(first.depth) < 0.5
    return Architecture(
        tuple(
            a if pick else b
            for a, b, pick in zip(first.layers, second.layers, take_first, strict=True)
        )
    )
