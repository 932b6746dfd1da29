"""Evolutionary search over architectures (Section 4.2.3): a population scored by a callback,
the better half kept as parents, the rest refilled by crossover and mutation of the parents.

Pure apart from the scoring callback: with the supernet's weights (inference only) it is the
validation NDCG@10 of the architecture's path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.architecture import Architecture
from training.search.space import crossover, mutate, random_architecture

# Draws allowed per wanted newcomer before a generation is left smaller (a tiny space can run
# out of architectures not seen yet)
DRAWS_PER_NEWCOMER = 50


@dataclass(frozen=True)
class EvolutionOptions:
    population: int = 20
    generations: int = 10
    mutation_rate: float = 0.25
    crossover_share: float = 0.5  # of the newcomers; the others are mutants

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ValueError(f"population must be >= 2, got {self.population}")
        if self.generations < 1:
            raise ValueError(f"generations must be >= 1, got {self.generations}")
        if not 0.0 < self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate must be in (0, 1], got {self.mutation_rate}")
        if not 0.0 <= self.crossover_share <= 1.0:
            raise ValueError(f"crossover_share must be in [0, 1], got {self.crossover_share}")


@dataclass(frozen=True)
class Scored:
    generation: int  # when it was first scored
    architecture: Architecture
    score: float


def evolve(
    score: Callable[[Architecture], float],
    depth: int,
    options: EvolutionOptions,
    rng: np.random.Generator,
    on_generation: Callable[[int, list[Scored]], None] | None = None,
) -> list[Scored]:
    """Every architecture scored, best first; each is scored once."""
    scored: dict[Architecture, Scored] = {}
    population = _newcomers([], options.population, depth, scored, options, rng)
    for generation in range(options.generations):
        for architecture in population:
            if architecture not in scored:
                scored[architecture] = Scored(generation, architecture, score(architecture))
        population.sort(key=lambda a: -scored[a].score)
        if on_generation is not None:
            on_generation(generation, [scored[a] for a in population])
        if generation == options.generations - 1:
            break
        parents = population[: max(2, options.population // 2)]
        wanted = options.population - len(parents)
        population = parents + _newcomers(parents, wanted, depth, scored, options, rng)
    return sorted(scored.values(), key=lambda s: -s.score)


def _newcomers(
    parents: list[Architecture],
    wanted: int,
    depth: int,
    seen: dict[Architecture, Scored],
    options: EvolutionOptions,
    rng: np.random.Generator,
) -> list[Architecture]:
    """Up to `wanted` architectures neither scored nor among the parents: random ones for the
    first generation, children of the parents after."""
    found: list[Architecture] = []
    for _ in range(wanted * DRAWS_PER_NEWCOMER):
        if len(found) == wanted:
            break
        if not parents:
            child = random_architecture(depth, rng)
        elif rng.random() < options.crossover_share:
            first, second = rng.choice(len(parents), size=2, replace=False)
            child = crossover(parents[first], parents[second], rng)
        else:
            child = mutate(parents[int(rng.integers(len(parents)))], rng, options.mutation_rate)
        if child not in seen and child not in parents and child not in found:
            found.append(child)
    return found
