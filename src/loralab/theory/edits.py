"""Adapters that edit facts (Proposition 1, eq. 17, a rank-1 LoRA trained by gradient descent) and the ways
the paper combines them (sum, CAT eq. 20, factor-space linear merging eq. 21, Arrow eq. 22)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from loralab.theory.model import DTYPE, Adapter, Model, Prompt, onehot


def edit_values(model: Model, prompts: Sequence[Prompt], targets: Sequence[int]) -> torch.Tensor:
    """The wanted output changes i_new - i_old (entities x k), i_old the base world's answer."""
    n = model.world.n_entities
    cols = []
    for p, t in zip(prompts, targets, strict=True):
        old = model.world.answer(p)
        if old is None:
            raise ValueError(f"prompt {p} has no answer in the base world: nothing to edit")
        cols.append(onehot(n, t) - onehot(n, old))
    return torch.stack(cols, dim=1)


def prop1_update(model: Model, x: int, r: int, new: int) -> torch.Tensor:
    """Eq. (1), literally: Delta W = (i_new - i_r(x)) v^T / |v|^2 with v = ReLU(U (V e_X + e_REL))."""
    v = model.phi([(x, r)])[0]
    w = edit_values(model, [(x, r)], [new])[:, 0]
    return torch.outer(w, v) / v.dot(v)


def min_norm_adapter(model: Model, prompts: Sequence[Prompt], targets: Sequence[int]) -> Adapter:
    """The adapter that sends each prompt to its target with the least |A|^2 + |B|^2 (eq. 17; eq. 1 for one
    prompt): Delta W = D G^-1 K with K the prompts' features, G = K K^T and D = i_new - i_old. Its row space
    is span(K), and projecting any interpolating update onto span(K) does not raise its nuclear norm, so
    this minimum-Frobenius update is also the minimum-nuclear-norm one, i.e. min |A|^2 + |B|^2 over A B^T.
    Its rank is the number of facts (padded with zero directions when the edits are linearly dependent),
    so adapters holding as many facts can be merged in factor space."""
    key = (tuple(prompts), tuple(targets))
    if key not in model.memo:
        keys = model.phi(prompts)
        values = edit_values(model, prompts, targets)
        A, B = balanced_factors(values, torch.linalg.solve(keys @ keys.T, keys).T, keys)
        model.memo[key] = Adapter(A, B, keys)
    return model.memo[key]


def balanced_factors(
    A: torch.Tensor, B: torch.Tensor, keys: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refactor A B^T as U S^1/2, V S^1/2 from its SVD (the factors with least |A|^2 + |B|^2), through a thin
    QR of B, never forming the entities x D product. A LoRA's factors are defined only up to a rotation
    of its rank space (and a sign per direction for rank 1), which changes the cross terms of factor-space
    merging; we fix the SVD-aligned rotation, and the sign so that each column of B points along the
    adapter's own training activations (positive summed inner product with `keys`)."""
    q, r = torch.linalg.qr(B)
    u, s, vh = torch.linalg.svd(A @ r.T, full_matrices=False)
    root = s.sqrt()
    A, B = u * root, (q @ vh.T) * root
    sign = torch.sign((keys @ B).sum(dim=0))
    sign[sign == 0] = 1.0
    return A * sign, B * sign


def gd_lora(
    model: Model,
    prompt: Prompt,
    target: int,
    steps: int = 3000,
    penalty_end: float = 1e-12,
    seed: int = 0,
) -> Adapter:
    """A rank-1 LoRA Delta W = p q^T trained by full-batch gradient descent on
    |(W + p q^T) phi - i_target|^2 + lam (|p|^2 + |q|^2), from LoRA's usual start (p = 0, q random).

    The penalty is annealed geometrically from lam_0 = |v| |w| / 2 to `penalty_end` over the first 80% of
    the steps, then held: the paper's adapter is the limit lam -> 0+ (the interpolating update of least
    penalty), and at a fixed lam the minimiser is that update shrunk by the factor 1 - lam / (|v| |w|) while
    the part of q orthogonal to v only decays like (1 - 2 lr lam)^t. The step size lr = 1 / (4 |v| |w|) is
    half the stability limit at the solution (the loss's curvature there is about 4 |v| |w|)."""
    phi = model.phi([prompt])[0]
    base = model.logits([prompt])[0]
    goal = onehot(model.world.n_entities, target)
    scale = float(phi.norm() * (goal - base).norm())
    lr, lam0 = 1.0 / (4 * scale), scale / 2
    gen = torch.Generator().manual_seed(seed)
    p = torch.zeros(model.world.n_entities, dtype=DTYPE, requires_grad=True)
    q = (torch.randn(model.width, generator=gen, dtype=DTYPE) / math.sqrt(model.width)).requires_grad_()
    anneal = int(0.8 * steps)
    for t in range(steps):
        lam = lam0 * (penalty_end / lam0) ** min(t / anneal, 1.0)
        out = base + p * (q @ phi)
        loss = (out - goal).square().sum() + lam * (p.square().sum() + q.square().sum())
        gp, gq = torch.autograd.grad(loss, (p, q))
        with torch.no_grad():
            p -= lr * gp
            q -= lr * gq
    return Adapter(p.detach()[:, None], q.detach()[:, None])


def weighted_sum(adapters: Sequence[Adapter], weights: Sequence[float] | None = None) -> Adapter:
    """Sum_j w_j A_j B_j^T (plain sum for w = 1; CAT, eq. 20, with fitted w): factors concatenated."""
    ws = [1.0] * len(adapters) if weights is None else list(weights)
    A = torch.cat([w * a.A for w, a in zip(ws, adapters, strict=True)], dim=1)
    return Adapter(A, torch.cat([a.B for a in adapters], dim=1))


def factor_merge(adapters: Sequence[Adapter], weights: Sequence[float] | torch.Tensor) -> Adapter:
    """(Sum_j w_j A_j)(Sum_j w_j B_j)^T: linear merging in factor space (eq. 21; Uniform is w_j = 1/n;
    Arrow, eq. 22, with prompt-dependent w). Its cross terms w_i w_j A_i B_j^T are what sets it apart from
    `weighted_sum`. All adapters must have the same rank."""
    ranks = {a.rank for a in adapters}
    if len(ranks) != 1:
        raise ValueError(f"factor-space merging needs adapters of one rank, got ranks {sorted(ranks)}")
    A = sum(w * a.A for w, a in zip(weights, adapters, strict=True))
    B = sum(w * a.B for w, a in zip(weights, adapters, strict=True))
    assert isinstance(A, torch.Tensor) and isinstance(B, torch.Tensor)
    return Adapter(A, B)


def arrow_weights(adapters: Sequence[Adapter], phi: torch.Tensor) -> torch.Tensor:
    """Routing weights of eq. (22) for one prompt's features `phi` (D): each adapter's weight is how much it
    fires, |k(eta, xi) / k(eta, eta)| at finite m (the norm of its fact coefficients when it holds several
    facts), normalised to sum to 1 as Arrow's routing coefficients do."""
    fire = torch.stack([a.coefficients(phi[None]).norm() for a in adapters])
    return fire / fire.sum()
