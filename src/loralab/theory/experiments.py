"""The lab's experiments: one plain function each over (model, case), in the registry `EXPERIMENTS`.

Each function runs on a model whose base W answers every fact of the base world, fits the adapters a case
asks for, combines them, and returns which test prompts got the right answer in the edited world, plus the
quantities the paper's argument is about. The lab runs every function twice on the same case: on width-m
random features (measured) and on the kernel's exact features (predicted, m -> infinity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from loralab.theory.edits import arrow_weights, factor_merge, min_norm_adapter, prop1_update, weighted_sum
from loralab.theory.model import Adapter, Model, Prompt, World, onehot


@dataclass(frozen=True)
class Chain:
    """The edits r1(x) := y and r2(y) := z, whose composition the two-hop prompt "x r1 r2" asks for (z)."""

    x: int
    r1: int
    r2: int
    y: int
    z: int

    @property
    def edits(self) -> dict[tuple[int, int], int]:
        return {(self.x, self.r1): self.y, (self.y, self.r2): self.z}

    @property
    def hop1(self) -> Prompt:
        return (self.x, self.r1)

    @property
    def hop2(self) -> Prompt:
        return (self.y, self.r2)

    @property
    def two_hop(self) -> Prompt:
        return (self.x, self.r1, self.r2)


@dataclass(frozen=True)
class Case:
    """One trial: `chains` (one, or several sharing r1 and r2), another entity `other` for "U REL1 REL2",
    and chains over other relation pairs for the larger library."""

    chains: tuple[Chain, ...]
    other: int | None = None
    library: tuple[Chain, ...] = ()

    def world(self, base: World, library: bool = False) -> World:
        """The edited world: the chains' edits, and the library's when its adapters are in play."""
        edits: dict[tuple[int, int], int] = {}
        for c in (*self.chains, *(self.library if library else ())):
            edits.update(c.edits)
        return base.edited(edits)


@dataclass
class Outcome:
    """Per test prompt: was the answer right in the edited world; and named measured quantities."""

    correct: list[bool]
    values: dict[str, float] = field(default_factory=dict)


Run = Callable[[Model, Case], Outcome]


@dataclass(frozen=True)
class ExperimentSpec:
    """A registry entry: `facts` says which cases it runs on (one chain, or k chains per adapter);
    `shown` names the quantities the table shows (all of them go to the JSON)."""

    name: str
    description: str
    paper: str
    facts: Literal["single", "multi"]
    shown: tuple[str, ...]
    run: Run


def hop_adapters(model: Model, chains: Sequence[Chain]) -> tuple[Adapter, Adapter]:
    """The two adapters of the theorem: r1 edits (x -> y) and r2 edits (y -> z), one fact or several each."""
    a1 = min_norm_adapter(model, [c.hop1 for c in chains], [c.y for c in chains])
    a2 = min_norm_adapter(model, [c.hop2 for c in chains], [c.z for c in chains])
    return a1, a2


def _judge(
    model: Model, case: Case, prompts: Sequence[Prompt], adapter: Adapter, library: bool = False
) -> list[bool]:
    """Is the answer under `adapter` the prompt's answer in the edited world?"""
    truth = case.world(model.world, library)
    return [a == truth.answer(p) for a, p in zip(model.answers(prompts, adapter), prompts, strict=True)]


def _coef(adapter: Adapter, model: Model, prompt: Prompt) -> float:
    return float(adapter.coefficients(model.phi([prompt]))[0, 0])


def _own_other(adapter: Adapter, model: Model, prompts: Sequence[Prompt]) -> dict[str, float]:
    """Mean coefficient of fact j on test prompt j (own) and on the other test prompts (other)."""
    c = adapter.coefficients(model.phi(prompts))
    k = c.shape[0]
    off = (c.sum() - c.diagonal().sum()) / (k * k - k)
    return {"own": float(c.diagonal().mean()), "other": float(off)}


def _direction(adapter: Adapter) -> torch.Tensor:
    """A single-fact adapter's output on its own prompt: i_new - i_old (Proposition 1)."""
    assert adapter.keys is not None
    return adapter.output(adapter.keys)[0]


def prop1(model: Model, case: Case) -> Outcome:
    """Proposition 1: the closed form (eq. 1) on the edited prompt "X REL1": its error against i_y, relative
    to |i_y - i_r1(x)|, and its distance to the min-norm fit of eq. (17) with one fact."""
    c = case.chains[0]
    dw = prop1_update(model, c.x, c.r1, c.y)
    phi = model.phi([c.hop1])
    after = model.logits([c.hop1])[0] + dw @ phi[0]
    goal = onehot(model.world.n_entities, c.y)
    rel_error = float((after - goal).norm() / (goal - model.logits([c.hop1])[0]).norm())
    fitted = min_norm_adapter(model, [c.hop1], [c.y]).delta()
    values = {"rel_error": rel_error, "vs_min_norm": float((fitted - dw).norm() / dw.norm())}
    return Outcome([int(after.argmax()) == c.y], values)


def thm2_sum(model: Model, case: Case) -> Outcome:
    """Theorem 2: sum the two single-fact adapters and ask "X REL1 REL2"."""
    (c,) = case.chains
    a1, a2 = hop_adapters(model, case.chains)
    summed = weighted_sum([a1, a2])
    a = [_coef(a1, model, c.two_hop), _coef(a2, model, c.two_hop)]
    # the output change is a1 (i_y - i_r1(x)) + a2 (i_z - i_r2(y)): record how exactly
    change = summed.output(model.phi([c.two_hop]))[0]
    residual = float((change - a[0] * _direction(a1) - a[1] * _direction(a2)).norm())
    # the sum can still land on z "for the wrong reason": when an edit removes the old answer o = r2(r1(x))
    # itself (o = r2(y) or o = r1(x)), o drops to 1 - a2 or 1 - a1, which can fall below a2
    old = model.world.answer(c.two_hop)
    removes_old = float(old in (model.world.answer(c.hop2), model.world.answer(c.hop1)))
    values = {"a1": a[0], "a2": a[1], "residual": residual, "removes_old": removes_old}
    return Outcome(_judge(model, case, [c.two_hop], summed), values)


def thm2_other_entity(model: Model, case: Case) -> Outcome:
    """The same two adapters on another entity's two-hop prompt "U REL1 REL2" (its answer is unchanged)."""
    (c,) = case.chains
    assert case.other is not None
    a1, a2 = hop_adapters(model, case.chains)
    prompt = (case.other, c.r1, c.r2)
    values = {"a1": _coef(a1, model, prompt), "a2": _coef(a2, model, prompt)}
    return Outcome(_judge(model, case, [prompt], weighted_sum([a1, a2])), values)


def multi_fact_sum(model: Model, case: Case) -> Outcome:
    """Eq. (17): each adapter edits k facts; sum them; ask every "X_j REL1 REL2"."""
    a1, a2 = hop_adapters(model, case.chains)
    prompts = [c.two_hop for c in case.chains]
    return Outcome(_judge(model, case, prompts, weighted_sum([a1, a2])), _own_other(a2, model, prompts))


def _fit_weights(outputs: torch.Tensor, grid: torch.Tensor, z: int) -> tuple[float, float]:
    """Pick (alpha1, alpha2) on the grid for one fit prompt whose answer must be z: the smallest |alpha|
    that puts z first by a margin of at least 0.05; if no grid point does, the largest margin.
    `outputs` holds the logits at every grid point (len(grid) x len(grid) x entities)."""
    others = outputs.clone()
    others[..., z] = -math.inf
    margin = (outputs[..., z] - others.max(dim=-1).values).flatten()
    g1, g2 = torch.meshgrid(grid, grid, indexing="ij")
    norm = (g1.square() + g2.square()).flatten()
    ok = margin >= 0.05
    best = int(torch.where(ok, norm, math.inf).argmin()) if ok.any() else int(margin.argmax())
    return float(g1.flatten()[best]), float(g2.flatten()[best])


GRID = torch.arange(-6.0, 6.0001, 0.1, dtype=torch.float64)


def cat(model: Model, case: Case) -> Outcome:
    """Eq. (20): alpha1 Delta W1 + alpha2 Delta W2 with k facts per adapter, alpha fitted (`_fit_weights`)
    on the first chain's two-hop prompt; tested on the other chains' two-hop prompts."""
    a1, a2 = hop_adapters(model, case.chains)
    fit, test = case.chains[0], [c.two_hop for c in case.chains[1:]]
    phi = model.phi([fit.two_hop])
    u1, u2 = a1.output(phi)[0], a2.output(phi)[0]
    g1, g2 = (t[..., None] for t in torch.meshgrid(GRID, GRID, indexing="ij"))
    alpha = _fit_weights(model.logits([fit.two_hop])[0] + g1 * u1 + g2 * u2, GRID, fit.z)
    merged = weighted_sum([a1, a2], alpha)
    fit_ok = float(_judge(model, case, [fit.two_hop], merged)[0])
    values = {"alpha1": alpha[0], "alpha2": alpha[1], "fit_prompt_correct": fit_ok}
    return Outcome(_judge(model, case, test, merged), values)


def linear(model: Model, case: Case) -> Outcome:
    """Eq. (21): (alpha1 A1 + alpha2 A2)(alpha1 B1 + alpha2 B2)^T with k facts per adapter, alpha fitted
    (`_fit_weights`) on the first chain's two-hop prompt; tested on the other chains' two-hop prompts."""
    a1, a2 = hop_adapters(model, case.chains)
    fit, test = case.chains[0], [c.two_hop for c in case.chains[1:]]
    phi = model.phi([fit.two_hop])
    h1, h2 = phi @ a1.B, phi @ a2.B
    # output(alpha) = base + al1^2 A1 h1 + al1 al2 (A1 h2 + A2 h1) + al2^2 A2 h2
    t11, t22 = (h1 @ a1.A.T)[0], (h2 @ a2.A.T)[0]
    t12 = (h2 @ a1.A.T + h1 @ a2.A.T)[0]
    g1, g2 = (t[..., None] for t in torch.meshgrid(GRID, GRID, indexing="ij"))
    out = model.logits([fit.two_hop])[0] + g1.square() * t11 + g1 * g2 * t12 + g2.square() * t22
    alpha = _fit_weights(out, GRID, fit.z)
    merged = factor_merge([a1, a2], alpha)
    fit_ok = float(_judge(model, case, [fit.two_hop], merged)[0])
    values = {"alpha1": alpha[0], "alpha2": alpha[1], "fit_prompt_correct": fit_ok}
    return Outcome(_judge(model, case, test, merged), values)


def _span_coefficients(change: torch.Tensor, a1: Adapter, a2: Adapter) -> tuple[float, float]:
    """Write an output change as b1 (i_y - i_r1(x)) + b2 (i_z - i_r2(y)) (least squares)."""
    basis = torch.stack([_direction(a1), _direction(a2)], dim=1)
    b = torch.linalg.lstsq(basis, change).solution
    return float(b[0]), float(b[1])


def uniform(model: Model, case: Case) -> Outcome:
    """Eq. (21) with alpha1 = alpha2 = 1/2 (Uniform) on the theorem's two single-fact adapters."""
    (c,) = case.chains
    a1, a2 = hop_adapters(model, case.chains)
    merged = factor_merge([a1, a2], [0.5, 0.5])
    b1, b2 = _span_coefficients(merged.output(model.phi([c.two_hop]))[0], a1, a2)
    return Outcome(_judge(model, case, [c.two_hop], merged), {"b1": b1, "b2": b2})


def arrow(model: Model, case: Case) -> Outcome:
    """Eq. (22): weights from |k(eta_j, xi) / k(eta_j, eta_j)| (normalised), merged in factor space."""
    (c,) = case.chains
    a1, a2 = hop_adapters(model, case.chains)
    w = arrow_weights([a1, a2], model.phi([c.two_hop])[0])
    merged = factor_merge([a1, a2], w)
    return Outcome(_judge(model, case, [c.two_hop], merged), {"w1": float(w[0]), "w2": float(w[1])})


def _library(model: Model, case: Case) -> tuple[list[Adapter], list[Adapter]]:
    """The larger library: the theorem's pair, then for each other relation pair its two one-hop adapters
    and an adapter trained on its two-hop prompt (x' ra rb -> z'). Returns (library, two-hop adapters)."""
    library = list(hop_adapters(model, case.chains))
    two_hop = [min_norm_adapter(model, [c.two_hop], [c.z]) for c in case.library]
    for c, a in zip(case.library, two_hop, strict=True):
        library += [*hop_adapters(model, [c]), a]
    return library, two_hop


def library_sum(model: Model, case: Case) -> Outcome:
    """The larger library, all adapters summed. Quantities: adapter 2's coefficient, and the largest
    coefficient of another pair's two-hop adapter on this two-hop prompt."""
    (c,) = case.chains
    library, two_hop = _library(model, case)
    fire = max((abs(_coef(a, model, c.two_hop)) for a in two_hop), default=0.0)
    values = {"a2": _coef(library[1], model, c.two_hop), "max_two_hop": fire}
    return Outcome(_judge(model, case, [c.two_hop], weighted_sum(library), library=True), values)


def library_arrow(model: Model, case: Case) -> Outcome:
    """The larger library routed by eq. (22): weights over all its adapters, merged in factor space.
    Quantities: adapter 2's weight, and the largest weight of any adapter outside the theorem's pair."""
    (c,) = case.chains
    library, _ = _library(model, case)
    w = arrow_weights(library, model.phi([c.two_hop])[0])
    merged = factor_merge(library, w)
    values = {"w2": float(w[1]), "w_max_other": float(w[2:].max()) if len(w) > 2 else 0.0}
    return Outcome(_judge(model, case, [c.two_hop], merged, library=True), values)


def oracle(model: Model, case: Case) -> Outcome:
    """Beyond the paper: the pair plus an adapter trained on the two-hop prompt itself (x r1 r2 -> z)."""
    (c,) = case.chains
    a1, a2 = hop_adapters(model, case.chains)
    ao = min_norm_adapter(model, [c.two_hop], [c.z])
    values = {"a_oracle": _coef(ao, model, c.two_hop), "a2": _coef(a2, model, c.two_hop)}
    return Outcome(_judge(model, case, [c.two_hop], weighted_sum([a1, a2, ao])), values)


def oracle_other_entity(model: Model, case: Case) -> Outcome:
    """The oracle's three adapters on another entity's two-hop prompt "U REL1 REL2": how far the oracle's
    edit bleeds (its answer must stay unchanged)."""
    (c,) = case.chains
    assert case.other is not None
    a1, a2 = hop_adapters(model, case.chains)
    ao = min_norm_adapter(model, [c.two_hop], [c.z])
    prompt = (case.other, c.r1, c.r2)
    values = {"a_oracle": _coef(ao, model, prompt)}
    return Outcome(_judge(model, case, [prompt], weighted_sum([a1, a2, ao])), values)


def oracle_task(model: Model, case: Case) -> Outcome:
    """Beyond the paper: the pair plus an adapter trained on the whole two-hop task r1 r2 of the edited
    world (every "x' REL1 REL2" with an answer, x's changed to z, the others kept); tested on X and U."""
    (c,) = case.chains
    assert case.other is not None
    a1, a2 = hop_adapters(model, case.chains)
    truth = case.world(model.world)
    task: list[Prompt] = []
    answers: list[int] = []
    for p in model.prompts:
        answer = truth.answer(p)
        if len(p) == 3 and p[1:] == (c.r1, c.r2) and answer is not None:
            task.append(p)
            answers.append(answer)
    ao = min_norm_adapter(model, task, answers)
    on_x, on_u = _judge(model, case, [c.two_hop, (case.other, c.r1, c.r2)], weighted_sum([a1, a2, ao]))
    return Outcome([on_x, on_u], {"on_x": float(on_x), "on_u": float(on_u), "facts": float(len(task))})


def bridge(model: Model, case: Case) -> Outcome:
    """Beyond the paper: the k-fact pair plus a bridge adapter trained on the composed two-hop prompts of the
    other k-1 edited entities; tested on the held-out entity's two-hop prompt (each entity held out once)."""
    a1, a2 = hop_adapters(model, case.chains)
    correct: list[bool] = []
    fire: list[float] = []
    for j, held in enumerate(case.chains):
        rest = [c for i, c in enumerate(case.chains) if i != j]
        ab = min_norm_adapter(model, [c.two_hop for c in rest], [c.z for c in rest])
        correct += _judge(model, case, [held.two_hop], weighted_sum([a1, a2, ab]))
        fire.append(float(ab.coefficients(model.phi([held.two_hop])).mean()))
    return Outcome(correct, {"bridge_mean": sum(fire) / len(fire)})


def cot(model: Model, case: Case) -> Outcome:
    """Beyond the paper: the summed pair, asked hop by hop (chain of thought): "X REL1" -> y', then
    "y' REL2" -> answer. Quantities: how much each adapter fires on the other hop's prompt."""
    (c,) = case.chains
    a1, a2 = hop_adapters(model, case.chains)
    summed = weighted_sum([a1, a2])
    y = model.answers([c.hop1], summed)[0]
    z = model.answers([(y, c.r2)], summed)[0]
    values = {"a2_on_hop1": _coef(a2, model, c.hop1), "a1_on_hop2": _coef(a1, model, c.hop2)}
    return Outcome([z == case.world(model.world).answer(c.two_hop)], values)


def _specs(*specs: ExperimentSpec) -> dict[str, ExperimentSpec]:
    out: dict[str, ExperimentSpec] = {}
    for s in specs:
        if s.name in out:
            raise ValueError(f"experiment {s.name} registered twice")
        out[s.name] = s
    return out


# name, description, paper, facts per adapter, quantities shown in the table, function
# fmt: off
_REGISTRY: list[tuple[str, str, str, Literal["single", "multi"], tuple[str, ...], Run]] = [
    ("prop1", "closed form eq. 1 on X REL1", "Prop. 1", "single", ("rel_error",), prop1),
    ("thm2_sum", "two single-fact adapters, summed", "Thm. 2", "single", ("a1", "a2"), thm2_sum),
    ("thm2_other_entity", "same adapters on U REL1 REL2", "A.1", "single", ("a1", "a2"), thm2_other_entity),
    ("multi_fact_sum", "k facts per adapter, summed", "eq. 17", "multi", ("own", "other"), multi_fact_sum),
    ("cat", "CAT, weights fitted on one 2-hop prompt", "eq. 20", "multi", ("alpha1", "alpha2"), cat),
    ("linear", "factor-space merge, weights fitted", "eq. 21", "multi", ("alpha1", "alpha2"), linear),
    ("uniform", "factor-space Uniform (alpha = 1/2)", "eq. 21", "single", ("b1", "b2"), uniform),
    ("arrow", "Arrow weights |k(eta,xi)/k(eta,eta)|", "eq. 22", "single", ("w1", "w2"), arrow),
    ("library_sum", "+ other pairs' 1-, 2-hop adapters", "A.1.1", "single", ("a2", "max_two_hop"), library_sum),
    ("library_arrow", "same library, Arrow", "A.1.1", "single", ("w2", "w_max_other"), library_arrow),
    ("oracle", "pair + adapter on the 2-hop prompt", "beyond", "single", ("a_oracle", "a2"), oracle),
    ("oracle_other_entity", "same on U REL1 REL2", "beyond", "single", ("a_oracle",), oracle_other_entity),
    ("oracle_task", "pair + adapter on the whole 2-hop task", "beyond", "single", ("on_x", "on_u"), oracle_task),
    ("bridge", "pair + adapter on others' 2-hop prompts", "beyond", "multi", ("bridge_mean",), bridge),
    ("cot", "summed pair, asked hop by hop (CoT)", "beyond", "single", ("a2_on_hop1", "a1_on_hop2"), cot),
]
# fmt: on
EXPERIMENTS: dict[str, ExperimentSpec] = _specs(*(ExperimentSpec(*row) for row in _REGISTRY))
