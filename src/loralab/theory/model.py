"""The one-layer random-features transformer of the paper's Section 3: world, embeddings, features, readout.

A world is a set of entities 0..n-1 and relations 0..R-1, each relation a partial function. A prompt is a
tuple: `(x, r)` is the one-hop prompt "X REL", `(x, r1, r2)` the two-hop prompt "X REL1 REL2". The model
sends the last token's embedding plus the single head's output (uniform attention over the tokens before
it, values V e) through the MLP `phi(h) = ReLU(U h)` and reads the answer out with W, no softmax:

    one-hop  "X REL":        h = V e_X + e_REL
    two-hop  "X REL1 REL2":  h = V e_X / 2 + V e_REL1 / 2 + e_REL2      (the 1/2 factors of eq. 13)

E, V and U are random and frozen, entries N(0, 1/d) (standard deviation 1/sqrt(d); see README.md for why
this reading of the paper's N(0, 1/sqrt(d))); only W is fitted. Everything after the features only uses
inner products of features, so the same `Model` runs on random features (finite m) and on the exact
features of the m -> infinity kernel (kernel.py): that is how the lab predicts.

Shapes: features are rows (prompts x D), W is entities x D, logits are prompts x entities. Float64 throughout.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch

Prompt = tuple[int, ...]
DTYPE = torch.float64


@dataclass(frozen=True)
class World:
    """Entities, relations and their facts `(x, r) -> y` (a missing key: r is undefined on x)."""

    n_entities: int
    n_relations: int
    facts: Mapping[tuple[int, int], int]

    def answer(self, prompt: Prompt) -> int | None:
        """Follow the prompt's relations from its entity: r2(r1(x)) for (x, r1, r2); None if undefined."""
        current: int | None = prompt[0]
        for r in prompt[1:]:
            current = self.facts.get((current, r)) if current is not None else None
        return current

    def edited(self, edits: Mapping[tuple[int, int], int]) -> World:
        return replace(self, facts={**self.facts, **edits})

    def known(self, prompts: Sequence[Prompt]) -> list[Prompt]:
        """The prompts that have an answer in this world."""
        return [p for p in prompts if self.answer(p) is not None]


def all_prompts(n_entities: int, n_relations: int) -> list[Prompt]:
    """Every one-hop prompt (x, r), then every two-hop prompt (x, r1, r2) (r1 = r2 included)."""
    rels = range(n_relations)
    one: list[Prompt] = [(x, r) for x in range(n_entities) for r in rels]
    two: list[Prompt] = [(x, r1, r2) for x in range(n_entities) for r1 in rels for r2 in rels]
    return one + two


def random_world(n_entities: int, n_relations: int, density: float, rng: random.Random) -> World:
    """Each relation is defined on each entity with probability `density`, with a uniform random value."""
    facts = {
        (x, r): rng.randrange(n_entities)
        for r in range(n_relations)
        for x in range(n_entities)
        if rng.random() < density
    }
    return World(n_entities, n_relations, facts)


@dataclass(frozen=True, eq=False)
class Embeddings:
    """Token embeddings E (entities first, then relations; rows) and the value matrix V."""

    E: torch.Tensor
    V: torch.Tensor
    n_entities: int

    @property
    def d(self) -> int:
        return int(self.E.shape[1])

    def inputs(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        """The MLP input h of each prompt (prompts x d): mean of V e over the tokens before the last one
        (uniform attention) plus the last token's own embedding (the residual stream)."""
        rows = []
        for p in prompts:
            tokens = [p[0]] + [self.n_entities + r for r in p[1:]]
            before = self.E[tokens[:-1]].mean(dim=0)
            rows.append(self.V @ before + self.E[tokens[-1]])
        return torch.stack(rows)


def random_embeddings(n_entities: int, n_relations: int, d: int, gen: torch.Generator) -> Embeddings:
    """E and V with entries N(0, 1/d)."""
    scale = d**-0.5
    E = torch.randn(n_entities + n_relations, d, generator=gen, dtype=DTYPE) * scale
    V = torch.randn(d, d, generator=gen, dtype=DTYPE) * scale
    return Embeddings(E, V, n_entities)


def draw_u(m: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """The MLP input matrix U (m x d), entries N(0, 1/d). Drawn in float32 (4x faster for the m = 2^16 sweep:
    they are only random numbers) and returned in float64, where all arithmetic happens."""
    return (torch.randn(m, d, generator=gen, dtype=torch.float32) * d**-0.5).to(DTYPE)


def relu_features(inputs: torch.Tensor, U: torch.Tensor, block: int = 8192) -> torch.Tensor:
    """phi(h) = ReLU(U h) for every row h of `inputs` (prompts x m), in blocks of U's rows."""
    parts = [torch.relu(inputs @ U[i : i + block].T) for i in range(0, U.shape[0], block)]
    return torch.cat(parts, dim=1)


def onehot(n: int, i: int) -> torch.Tensor:
    out = torch.zeros(n, dtype=DTYPE)
    out[i] = 1.0
    return out


@dataclass(frozen=True, eq=False)
class Adapter:
    """A LoRA on the readout: Delta W = A B^T, A (entities x s) on the output side, B (D x s) on the input
    side. A min-norm adapter also keeps the features of the prompts it was fitted on (`keys`, k x D)."""

    A: torch.Tensor
    B: torch.Tensor
    keys: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        return int(self.A.shape[1])

    def delta(self) -> torch.Tensor:
        return self.A @ self.B.T

    def output(self, phi: torch.Tensor) -> torch.Tensor:
        """Delta W phi for feature rows `phi` (prompts x D) -> prompts x entities."""
        return (phi @ self.B) @ self.A.T

    def coefficients(self, phi: torch.Tensor) -> torch.Tensor:
        """How much each fitted fact fires on `phi` (prompts x k): G^-1 K phi with G the keys' Gram matrix.
        For one fact this is v.phi / |v|^2, which tends to k(eta, xi) / k(eta, eta) as m grows (eq. 9)."""
        if self.keys is None:
            raise ValueError("coefficients need an adapter fitted by min_norm_adapter")
        gram = self.keys @ self.keys.T
        return torch.linalg.solve(gram, self.keys @ phi.T).T


@dataclass(frozen=True, eq=False)
class Model:
    """W applied to precomputed features of every prompt of the world's vocabulary."""

    world: World
    prompts: list[Prompt]
    features: torch.Tensor
    W: torch.Tensor
    index: dict[Prompt, int] = field(init=False)
    memo: dict[object, Adapter] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {p: i for i, p in enumerate(self.prompts)})
        # min-norm adapters are pure functions of (model, prompts, targets): edits.py caches them here
        object.__setattr__(self, "memo", {})

    @property
    def width(self) -> int:
        return int(self.features.shape[1])

    def phi(self, prompts: Sequence[Prompt]) -> torch.Tensor:
        return self.features[[self.index[p] for p in prompts]]

    def logits(self, prompts: Sequence[Prompt], adapter: Adapter | None = None) -> torch.Tensor:
        phi = self.phi(prompts)
        out = phi @ self.W.T
        return out if adapter is None else out + adapter.output(phi)

    def answers(self, prompts: Sequence[Prompt], adapter: Adapter | None = None) -> list[int]:
        return [int(i) for i in self.logits(prompts, adapter).argmax(dim=1)]

    def base_accuracy(self) -> float:
        """Fraction of the world's one-hop and two-hop facts the base model answers correctly."""
        known = self.world.known(self.prompts)
        got = self.answers(known)
        return sum(g == self.world.answer(p) for g, p in zip(got, known, strict=True)) / len(known)


def fit_readout(world: World, prompts: Sequence[Prompt], features: torch.Tensor) -> torch.Tensor:
    """The minimum-norm W with W phi(p) = i_answer(p) for every prompt that has an answer (least squares;
    exact when the width is at least the number of facts)."""
    known = world.known(prompts)
    index = {p: i for i, p in enumerate(prompts)}
    phi = features[[index[p] for p in known]]
    targets = torch.stack([onehot(world.n_entities, _answer(world, p)) for p in known])
    # W^T = phi^T G^+ targets with G = phi phi^T (the minimum-norm solution), then one step of iterative
    # refinement: solving through G squares phi's condition number; the step recovers the lost digits
    gram = phi @ phi.T
    W_T = phi.T @ torch.linalg.lstsq(gram, targets, driver="gelsd").solution
    W_T = W_T + phi.T @ torch.linalg.lstsq(gram, targets - phi @ W_T, driver="gelsd").solution
    return W_T.T


def _answer(world: World, prompt: Prompt) -> int:
    answer = world.answer(prompt)
    if answer is None:
        raise ValueError(f"prompt {prompt} has no answer in this world")
    return answer


def build_model(world: World, prompts: Sequence[Prompt], features: torch.Tensor) -> Model:
    features = features.contiguous()
    return Model(world, list(prompts), features, fit_readout(world, prompts, features))
