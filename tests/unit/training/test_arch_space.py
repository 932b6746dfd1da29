"""The architecture search space (AutoDisenSeq 4.2.1-4.2.2), the supernet's context-aware
parameter sharing (4.2.4) and the evolution (4.2.3), without training runs."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from training.architecture import (
    NONZERO_OPS,
    AdditionLayer,
    Architecture,
    ArchitectureError,
    AttentionLayer,
    LayerType,
    Op,
    Role,
    choices_per_layer,
    space_size,
)
from training.config import DisenConfig
from training.models import build_model
from training.models.searched import every_connection
from training.search.evolution import EvolutionOptions, evolve
from training.search.space import crossover, mutate, random_architecture
from training.search.supernet import build_supernet, standalone, use_path


def _every_layer(index: int) -> list:
    additions = [
        AdditionLayer(op, source, extra)
        for op in NONZERO_OPS
        for source in range(index)
        for extra in Op
    ]
    attentions = [
        AttentionLayer(q, source, k, v)
        for q in NONZERO_OPS
        for source in range(index)
        for k in NONZERO_OPS
        for v in NONZERO_OPS
    ]
    return additions + attentions


def test_space_size_is_eq_19_and_counts_every_valid_architecture() -> None:
    for index in (1, 2, 3):
        assert len(set(_every_layer(index))) == choices_per_layer(index) == 39 * index
    every = {Architecture(layers) for layers in itertools.product(*map(_every_layer, (1, 2, 3)))}
    assert len(every) == space_size(3) == 39 * 78 * 117


def test_sampled_architectures_keep_both_constraints() -> None:
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        architecture = random_architecture(5, rng)
        seen.add(architecture)
        for target, layer in enumerate(architecture.layers, start=1):
            connections = architecture.connections(target)
            chain = [c for c in connections if c.source == target - 1 and c.op is not Op.ZERO]
            assert chain, "every layer reads its previous layer through a non-zero op"
            assert all(0 <= c.source < target for c in connections)
            if isinstance(layer, AttentionLayer):
                roles = {c.role: c for c in connections}
                assert roles[Role.QUERY].source == target - 1
                assert roles[Role.KEY].source == roles[Role.VALUE].source
                assert Op.ZERO not in (c.op for c in connections)
        assert Architecture.from_dict(json.loads(json.dumps(architecture.to_dict()))) == (
            architecture
        )
    assert len(seen) > 250  # hashable, and the draws are spread over the space


def test_mutation_and_crossover_stay_in_the_space() -> None:
    rng = np.random.default_rng(1)
    first, second = random_architecture(4, rng), random_architecture(4, rng)
    for _ in range(100):
        child = crossover(first, second, rng)
        assert all(
            layer in (a, b)
            for layer, a, b in zip(child.layers, first.layers, second.layers, strict=True)
        )
        mutant = mutate(first, rng, rate=0.25)
        assert mutant != first and mutant.depth == first.depth


@pytest.mark.parametrize(
    ("layers", "words"),
    [
        (
            [{"type": "addition", "op": "zero", "extra_source": 0, "extra_op": "zero"}],
            "layer 1 op: must not be 'zero'",
        ),
        (
            [
                {
                    "type": "attention",
                    "query_op": "linear",
                    "memory_source": 1,
                    "key_op": "linear",
                    "value_op": "ffn",
                }
            ],
            "layer 1 memory_source: must be an earlier layer, 0..0",
        ),
        (
            [
                {
                    "type": "attention",
                    "query_op": "linear",
                    "memory_source": 0,
                    "key_op": "zero",
                    "value_op": "ffn",
                }
            ],
            "layer 1 key_op: must not be 'zero'",
        ),
        (
            [{"type": "addition", "op": "conv", "extra_source": 0, "extra_op": "zero"}],
            "layer 1 op: unknown operation 'conv'",
        ),
        ([{"type": "addition", "op": "linear", "extra_source": 0}], "missing ['extra_op']"),
        ([{"type": "pooling"}], 'layer 1: needs "type"'),
        ([], "at least one hidden layer"),
    ],
)
def test_invalid_architectures_are_refused_by_name(layers: list, words: str) -> None:
    with pytest.raises(ArchitectureError) as error:
        Architecture.from_dict({"layers": layers})
    assert words in str(error.value)


def _config(**overrides) -> DisenConfig:
    return replace(DisenConfig(n_items=40, dim=16, heads=2, max_len=8, intents=2), **overrides)


def test_parameters_are_shared_within_a_context_only() -> None:
    supernet = build_supernet(_config(), depth=3)
    ops = supernet.searched.ops
    into_3 = AdditionLayer(Op.LINEAR, 0, Op.ZERO)
    after_attention = Architecture(
        (
            AdditionLayer(Op.IDENTITY, 0, Op.ZERO),
            AttentionLayer(Op.LINEAR, 0, Op.LINEAR, Op.FFN),
            into_3,
        )
    )
    after_addition = Architecture(
        (
            AttentionLayer(Op.FFN, 0, Op.LINEAR, Op.LINEAR),
            AdditionLayer(Op.LINEAR, 1, Op.FFN),
            into_3,
        )
    )
    # the same connection 2 -> 3 (linear), its source an attention layer in one, an addition
    # layer in the other: two contexts, two tensors
    (from_attention,) = after_attention.connections(3)
    (from_addition,) = after_addition.connections(3)
    assert from_attention.context == (LayerType.ATTENTION, Role.INPUT)
    assert from_addition.context == (LayerType.ADDITION, Role.INPUT)
    first, second = ops[from_attention.key].weight, ops[from_addition.key].weight
    assert first.data_ptr() != second.data_ptr()
    # an attention layer's query, key and value connections are three contexts
    keys = {c.key for c in after_attention.connections(2)}
    assert len(keys) == 3 and all(k in ops for k in keys)
    # the same connection in the same context in two architectures is one tensor: a step on
    # one architecture moves it for the other, and leaves the other context alone
    same_context = Architecture(
        (
            AdditionLayer(Op.FFN, 0, Op.LINEAR),
            AttentionLayer(Op.IDENTITY, 1, Op.FFN, Op.FFN),
            into_3,
        )
    )
    assert same_context.connections(3)[0].key == from_attention.key
    before = second.detach().clone()
    use_path(supernet, same_context)
    supernet.train()
    supernet.score_all(torch.randint(1, 41, (4, 8))).sum().backward()
    assert ops[from_attention.key].weight.grad is not None
    assert ops[from_addition.key].weight.grad is None
    torch.testing.assert_close(second.detach(), before)
    contexts = {(c.source_type, c.role) for c in every_connection(3)}
    assert len(contexts) == 8


def test_a_supernet_path_computes_what_a_standalone_model_of_it_computes() -> None:
    torch.manual_seed(0)
    config = _config()
    supernet = build_supernet(config, depth=4).eval()
    rng = np.random.default_rng(3)
    sequences = torch.randint(0, 41, (6, 8))
    sequences[:, -1] = torch.randint(1, 41, (6,))
    for _ in range(5):
        architecture = random_architecture(4, rng)
        use_path(supernet, architecture)
        alone = standalone(supernet, config, architecture).eval()
        assert len(alone.state_dict()) < len(supernet.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(alone.encode(sequences), supernet.encode(sequences))
        rebuilt = build_model(
            {**alone.config.__dict__, "trunk": json.loads(json.dumps(architecture.to_dict()))}
        )
        assert rebuilt.trunk_architecture == architecture


def test_a_trunk_is_checked_when_the_model_config_is_built() -> None:
    with pytest.raises(ValueError, match="trunk: layer 1 op: must not be 'zero'"):
        _config(
            trunk={
                "layers": [
                    {"type": "addition", "op": "zero", "extra_source": 0, "extra_op": "zero"}
                ]
            }
        )


def test_evolution_scores_each_architecture_once_and_keeps_the_best() -> None:
    calls: list[Architecture] = []

    def score(architecture: Architecture) -> float:
        calls.append(architecture)
        # rewards attention layers reading the embeddings, ties broken by the description
        reading_embeddings = sum(
            isinstance(layer, AttentionLayer) and layer.memory_source == 0
            for layer in architecture.layers
        )
        return reading_embeddings + 1e-3 * len(architecture.describe())

    options = EvolutionOptions(population=8, generations=6)
    first = evolve(score, 4, options, np.random.default_rng(7))
    assert len(calls) == len(set(calls)) == len(first)
    assert len(first) <= 8 + 5 * 4
    assert [s.score for s in first] == sorted((s.score for s in first), reverse=True)
    best_of_generation_0 = max(s.score for s in first if s.generation == 0)
    assert first[0].score >= best_of_generation_0
    calls.clear()
    again = evolve(score, 4, options, np.random.default_rng(7))
    assert [(s.architecture, s.generation) for s in again] == [
        (s.architecture, s.generation) for s in first
    ]
