"""The lab: draw random worlds and edits, run every experiment measured (width m) and predicted (kernel),
check Proposition 1, sweep the Theorem 2 coefficients over m, and gather one tidy result."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import torch

from loralab.evaluation.score import wilson
from loralab.theory.config import TheoryConfig
from loralab.theory.edits import gd_lora, prop1_update
from loralab.theory.experiments import EXPERIMENTS, Case, Chain, ExperimentSpec, Outcome, thm2_sum
from loralab.theory.kernel import kernel_features
from loralab.theory.model import (
    Model,
    World,
    all_prompts,
    build_model,
    draw_u,
    random_embeddings,
    random_world,
    relu_features,
)


def sample_chain(
    world: World,
    rng: random.Random,
    r1: int,
    r2: int,
    taken: AbstractSet[tuple[int, int]] = frozenset(),
    avoid: AbstractSet[int] = frozenset(),
    avoid_x: AbstractSet[int] = frozenset(),
) -> Chain | None:
    """A chain r1(x) := y, r2(y) := z that really edits: y outside {r1(x), x}, and z outside {r2(y), the old
    two-hop answer r2(r1(x)), y, r1(x)} (the last two keep i_y - i_r1(x) and i_z - i_r2(y) independent).
    Its edited keys avoid `taken`, x avoids `avoid_x`, y and z avoid `avoid`. None if there is no such chain."""
    n = world.n_entities
    xs = [
        x
        for x in range(n)
        if x not in avoid_x and (x, r1) not in taken and world.answer((x, r1, r2)) is not None
    ]
    rng.shuffle(xs)
    for x in xs:
        old_y, old_z = world.facts[(x, r1)], world.answer((x, r1, r2))
        ys = [
            y
            for y in range(n)
            if y not in {old_y, x} | avoid and (y, r2) in world.facts and (y, r2) not in taken
        ]
        rng.shuffle(ys)
        for y in ys:
            zs = [z for z in range(n) if z not in {world.facts[(y, r2)], old_z, y, old_y} | avoid]
            if zs:
                return Chain(x, r1, r2, y, rng.choice(zs))
    return None


def sample_single(world: World, rng: random.Random, library_pairs: int) -> Case | None:
    """One chain over a random pair r1 != r2, another entity u (x != u, r1(u) != y, so that u's two-hop
    answer is untouched by the edits), and chains over up to `library_pairs` other ordered pairs."""
    r1, r2 = rng.sample(range(world.n_relations), 2)
    chain = sample_chain(world, rng, r1, r2)
    if chain is None:
        return None
    us = [
        u
        for u in range(world.n_entities)
        if u != chain.x and world.facts.get((u, r1)) != chain.y and world.answer((u, r1, r2)) is not None
    ]
    if not us:
        return None
    taken = set(chain.edits)
    pairs = [(a, b) for a in range(world.n_relations) for b in range(world.n_relations) if a != b]
    pairs.remove((r1, r2))
    rng.shuffle(pairs)
    library: list[Chain] = []
    for ra, rb in pairs[:library_pairs]:
        other = sample_chain(world, rng, ra, rb, taken)
        if other is not None:
            library.append(other)
            taken |= set(other.edits)
    return Case((chain,), rng.choice(us), tuple(library))


def sample_multi(world: World, rng: random.Random, k: int) -> Case | None:
    """k chains over one pair r1 != r2 (eq. 17's setting). Each new chain's y and z avoid the entities of the
    earlier chains and its x avoids their y's: no input (X REL1 REL2 vs Y REL2) shares an entity token with
    another chain's, and no chain's answer is another chain's edit target."""
    r1, r2 = rng.sample(range(world.n_relations), 2)
    chains: list[Chain] = []
    taken: set[tuple[int, int]] = set()
    for _ in range(k):
        used = {e for c in chains for e in (c.x, c.y, c.z)}
        c = sample_chain(world, rng, r1, r2, taken, used, {c.y for c in chains})
        if c is None:
            return None
        chains.append(c)
        taken |= set(c.edits)
    return Case(tuple(chains))


@dataclass
class Tally:
    """Everything one experiment saw over all worlds: correctness and quantities, measured and predicted
    (the lists of `values` and `values_pred` are aligned case by case)."""

    correct: list[bool] = field(default_factory=list)
    correct_pred: list[bool] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)
    values_pred: dict[str, list[float]] = field(default_factory=dict)

    def add(self, measured: Outcome, predicted: Outcome) -> None:
        self.correct += measured.correct
        self.correct_pred += predicted.correct
        for store, out in ((self.values, measured), (self.values_pred, predicted)):
            for k, v in out.values.items():
                store.setdefault(k, []).append(v)


@dataclass
class Row:
    """One line of the result table: quantities are means over cases; accuracy is over test prompts."""

    experiment: str
    paper: str
    description: str
    shown: tuple[str, ...]
    measured: dict[str, float]
    predicted: dict[str, float]
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    predicted_accuracy: float


@dataclass
class SweepPoint:
    """The Theorem 2 coefficients at one width m over all worlds' single-fact chains: means of measured and
    predicted, the relative error |measured - predicted| / predicted (mean, max over a1 and a2 of every
    chain), and the fraction of two-hop prompts answered with the composed z."""

    m: int
    a1_measured: float
    a2_measured: float
    a1_predicted: float
    a2_predicted: float
    rel_error_mean: float
    rel_error_max: float
    composed: float
    n: int


@dataclass
class LabResult:
    config: TheoryConfig
    rows: list[Row]
    sweep: list[SweepPoint]
    summary: dict[str, float]
    seconds: float


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _row(spec: ExperimentSpec | tuple[str, str, str, tuple[str, ...]], tally: Tally) -> Row:
    name, paper, description, shown = (
        (spec.name, spec.paper, spec.description, spec.shown) if isinstance(spec, ExperimentSpec) else spec
    )
    n, hits = len(tally.correct), sum(tally.correct)
    lo, hi = wilson(hits, n)
    return Row(
        experiment=name,
        paper=paper,
        description=description,
        shown=shown,
        measured={k: _mean(v) for k, v in tally.values.items()},
        predicted={k: _mean(v) for k, v in tally.values_pred.items()},
        n=n,
        accuracy=hits / n if n else math.nan,
        ci_low=lo,
        ci_high=hi,
        predicted_accuracy=_mean([float(c) for c in tally.correct_pred]),
    )


def gd_check(model: Model, case: Case, seed: int) -> Outcome:
    """A rank-1 LoRA trained by gradient descent on the edit r1(x) := y, against Proposition 1's closed form:
    |Delta W_GD - Delta W| / |Delta W| (Frobenius), and whether it answers y."""
    c = case.chains[0]
    closed = prop1_update(model, c.x, c.r1, c.y)
    trained = gd_lora(model, c.hop1, c.y, seed=seed)
    rel = float((trained.delta() - closed).norm() / closed.norm())
    return Outcome([model.answers([c.hop1], trained)[0] == c.y], {"rel_diff": rel})


def _rel_errors(outs: Sequence[Outcome], limit: Sequence[Outcome]) -> list[float]:
    return [
        abs(o.values[a] - k.values[a]) / abs(k.values[a])
        for o, k in zip(outs, limit, strict=True)
        for a in ("a1", "a2")
    ]


def run_world(cfg: TheoryConfig, seed: int, tallies: dict[str, Tally]) -> dict[int, list[Outcome]]:
    """One random world: add its experiments (measured at width m, predicted by the kernel) and, for world 0,
    the gradient-descent checks to `tallies`; return its sweep (empty past `cfg.sweep_seeds` worlds):
    thm2_sum at each width of `cfg.sweep` (the first m rows of U are a valid U of width m) and on the
    kernel (key 0)."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    world = random_world(cfg.entities, cfg.relations, cfg.density, rng)
    emb = random_embeddings(cfg.entities, cfg.relations, cfg.d, gen)
    prompts = all_prompts(cfg.entities, cfg.relations)
    inputs = emb.inputs(prompts)
    swept = seed < cfg.sweep_seeds
    features = relu_features(inputs, draw_u(max(cfg.m, cfg.m_max) if swept else cfg.m, cfg.d, gen))
    measured = build_model(world, prompts, features[:, : cfg.m])
    predicted = build_model(world, prompts, kernel_features(inputs, cfg.m, cfg.d))
    tallies[BASE[0]].add(Outcome(_base(measured)), Outcome(_base(predicted)))
    singles = [sample_single(world, rng, cfg.library_pairs) for _ in range(cfg.edits_per_world)]
    multis = [sample_multi(world, rng, cfg.facts_per_adapter) for _ in range(cfg.fact_sets_per_world)]
    cases = {"single": [c for c in singles if c], "multi": [c for c in multis if c]}
    for name, spec in EXPERIMENTS.items():
        for case in cases[spec.facts]:
            tallies[name].add(spec.run(measured, case), spec.run(predicted, case))
    for i, case in enumerate(cases["single"][: cfg.gd_checks if seed == 0 else 0]):
        # predicted: Proposition 1 says gradient descent lands on the closed form
        tallies[PROP1_GD[0]].add(gd_check(measured, case, i), Outcome([True], {"rel_diff": 0.0}))
    if not swept:
        return {}
    sweep = {
        m: [thm2_sum(build_model(world, prompts, features[:, :m]), c) for c in cases["single"]]
        for m in cfg.sweep
    }
    sweep[0] = [thm2_sum(predicted, c) for c in cases["single"]]
    return sweep


def _base(model: Model) -> list[bool]:
    known = model.world.known(model.prompts)
    return [a == model.world.answer(p) for a, p in zip(model.answers(known), known, strict=True)]


def _sweep_points(per_world: list[dict[int, list[Outcome]]], widths: Sequence[int]) -> list[SweepPoint]:
    per_world = [w for w in per_world if w]
    limit = [o for w in per_world for o in w[0]]
    points = []
    for m in widths:
        got = [o for w in per_world for o in w[m]]
        errs = _rel_errors(got, limit)
        points.append(
            SweepPoint(
                m=m,
                a1_measured=_mean([g.values["a1"] for g in got]),
                a2_measured=_mean([g.values["a2"] for g in got]),
                a1_predicted=_mean([k.values["a1"] for k in limit]),
                a2_predicted=_mean([k.values["a2"] for k in limit]),
                rel_error_mean=_mean(errs),
                rel_error_max=max(errs, default=math.nan),
                composed=_mean([float(c) for g in got for c in g.correct]),
                n=len(got),
            )
        )
    return points


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """The lab is thousands of tiny matrix operations, for which one thread beats two (on the 2-core
    reference machine under load, a 144 x 144 eigh took 1.5 ms on one thread and 16-116 ms on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# rows outside the registry: the base model on its own facts, and the gradient-descent check of Prop. 1
BASE = ("base", "Sec. 3.2", "base model on every 1- and 2-hop fact", ())
PROP1_GD = ("prop1_gd", "Prop. 1", "rank-1 LoRA by GD vs closed form", ("rel_diff",))


def run_lab(cfg: TheoryConfig, on_world: Callable[[int], None] | None = None) -> LabResult:
    """Run the whole lab; `on_world(seed)` is called after each world (progress)."""
    start = time.perf_counter()
    tallies = {name: Tally() for name in (*EXPERIMENTS, BASE[0], PROP1_GD[0])}
    per_world = []
    with one_thread():
        for seed in range(cfg.seeds):
            per_world.append(run_world(cfg, seed, tallies))
            if on_world is not None:
                on_world(seed)
    thm2, p1 = tallies["thm2_sum"], tallies["prop1"]
    thm2_outs = [Outcome([], {a: thm2.values[a][i] for a in ("a1", "a2")}) for i in range(len(thm2.correct))]
    thm2_lim = [
        Outcome([], {a: thm2.values_pred[a][i] for a in ("a1", "a2")}) for i in range(len(thm2.correct))
    ]
    summary = {
        "prop1_rel_error": max(p1.values.get("rel_error", []), default=math.nan),
        "prop1_vs_min_norm": max(p1.values.get("vs_min_norm", []), default=math.nan),
        "prop1_gd_rel_diff": max(tallies[PROP1_GD[0]].values.get("rel_diff", []), default=math.nan),
        "thm2_rel_error_mean": _mean(_rel_errors(thm2_outs, thm2_lim)),
        "thm2_residual_max": max(thm2.values.get("residual", []), default=math.nan),
        "base_accuracy": _mean([float(c) for c in tallies[BASE[0]].correct]),
        "base_accuracy_kernel": _mean([float(c) for c in tallies[BASE[0]].correct_pred]),
    }
    rows = [_row(spec, tallies[name]) for name, spec in EXPERIMENTS.items()]
    rows.insert(1, _row(PROP1_GD, tallies[PROP1_GD[0]]))
    rows.insert(0, _row(BASE, tallies[BASE[0]]))
    return LabResult(cfg, rows, _sweep_points(per_world, cfg.sweep), summary, time.perf_counter() - start)
