"""What the Theorem 2 lab runs: sizes of the model and the world, and how many random worlds (typed once)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loralab.errors import LoralabError

MAX_CELLS = 2**27
"""The largest d x m (a float64 W of 1 GiB) the lab accepts."""


@dataclass(frozen=True)
class TheoryConfig:
    """Sizes and sample counts of the lab.

    d: embedding width (the paper wants d >> |X||R|).
    m: MLP width of the model the experiments run on (the random-features width).
    entities, relations: |X| and |R| of each random world.
    seeds: number of random worlds (seeds 0 .. seeds-1); each gets its own E, V, U and facts.
    m_max: the m sweep of the Theorem 2 coefficients runs over powers of two from 2^8 to m_max.
    sweep_seeds: how many worlds (the first ones) the m sweep runs on.
    density: probability that a relation is defined on an entity (relations are partial functions).
    edits_per_world: single-fact edit chains r1(x)=y, r2(y)=z drawn per world.
    fact_sets_per_world: sets of `facts_per_adapter` chains per world, for the several-facts experiments.
    facts_per_adapter: facts edited by one adapter in those experiments (eq. 17).
    library_pairs: other relation pairs whose adapters (two one-hop, one two-hop) join the larger library.
    gd_checks: edits of world 0 on which a rank-1 LoRA is also trained by gradient descent.
    """

    d: int = 256
    m: int = 4096
    entities: int = 12
    relations: int = 3
    seeds: int = 20
    m_max: int = 2**16
    sweep_seeds: int = 5
    density: float = 0.85
    edits_per_world: int = 10
    fact_sets_per_world: int = 3
    facts_per_adapter: int = 4
    library_pairs: int = 6
    gd_checks: int = 3

    def __post_init__(self) -> None:
        positive = (
            "d",
            "m",
            "seeds",
            "sweep_seeds",
            "edits_per_world",
            "fact_sets_per_world",
            "library_pairs",
        )
        for name in positive:
            if getattr(self, name) < 1:
                _bad(name, getattr(self, name), "must be positive")
        if self.entities < 3:
            _bad("entities", self.entities, "must be at least 3 (an edit needs x, y and z)")
        if self.relations < 2:
            _bad("relations", self.relations, "must be at least 2 (a two-hop prompt composes r1 != r2)")
        if self.n_prompts > 100_000:
            _bad("entities", self.entities, "with these relations, |X||R|(1+|R|) must be at most 100000")
        if self.m < self.n_prompts:
            _bad(
                "m", self.m, f"must be at least the number of prompts ({self.n_prompts}) so that W fits them"
            )
        if self.m_max < 2**8:
            _bad("m_max", self.m_max, "must be at least 256 (the sweep starts at 2^8)")
        if not 0 < self.density <= 1:
            _bad("density", self.density, "must be in (0, 1]")
        if self.facts_per_adapter < 2:
            _bad("facts_per_adapter", self.facts_per_adapter, "must be at least 2")
        if self.gd_checks < 0:
            _bad("gd_checks", self.gd_checks, "must not be negative")
        # upper bounds, so that a typo is a line and not an out-of-memory crash or a run of days
        for name, width in (("m", self.m), ("m-max", self.m_max)):
            if self.d * width > MAX_CELLS:
                raise LoralabError(
                    f"--d {self.d} --{name} {width}: d x {name} must be at most 2^27 (a 1 GiB matrix)"
                )
        if self.seeds > 10_000:
            _bad("seeds", self.seeds, "must be at most 10000")

    @property
    def n_prompts(self) -> int:
        """All one-hop and two-hop prompts: |X||R| + |X||R|^2 (an upper bound on the facts W must fit)."""
        return self.entities * self.relations * (1 + self.relations)

    @property
    def sweep(self) -> tuple[int, ...]:
        """The widths of the m sweep: 2^8, 2^9, ... up to m_max."""
        out, m = [], 2**8
        while m <= self.m_max:
            out.append(m)
            m *= 2
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bad(name: str, value: object, why: str) -> None:
    raise LoralabError(f"--{name.replace('_', '-')} {value}: {why}")
