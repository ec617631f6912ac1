"""The m -> infinity limit of the random features: the arc-cosine kernel of degree 1 (the paper's eq. 9).

For U with i.i.d. rows u ~ N(0, I/d) (our convention, see model.py) and phi(h) = ReLU(U h),

    (1/m) phi(h)^T phi(h')  ->  k(h, h') = E_u[ReLU(u.h) ReLU(u.h')]
                                         = |h| |h'| (sin t + (pi - t) cos t) / (2 pi d),   cos t = h.h' / (|h| |h'|)

(Cho and Saul, 2009). The paper's eq. (9) writes the constant as 1 / (2 (d + 1) pi); the constant cancels in
every ratio the lab uses (a_j = k(eta_j, xi) / k(eta_j, eta_j), and every min-norm fit), so both conventions
give the same predictions.
"""

from __future__ import annotations

import math

import torch


def arccos_kernel(X: torch.Tensor, Y: torch.Tensor, d: int) -> torch.Tensor:
    """k(x, y) for every row x of X and row y of Y (len(X) x len(Y))."""
    nx = X.norm(dim=1, keepdim=True)
    ny = Y.norm(dim=1, keepdim=True)
    cos = ((X @ Y.T) / (nx * ny.T)).clamp(-1.0, 1.0)
    t = torch.arccos(cos)
    return nx * ny.T * (torch.sin(t) + (math.pi - t) * cos) / (2 * math.pi * d)


def kernel_coefficient(eta: torch.Tensor, xi: torch.Tensor, d: int) -> float:
    """The Theorem 2 prediction k(eta, xi) / k(eta, eta): how much an adapter fitted on the prompt with MLP
    input eta fires on the prompt with MLP input xi, as m -> infinity."""
    k = arccos_kernel(torch.stack([eta, xi]), eta[None], d)
    return float(k[1, 0] / k[0, 0])


def kernel_features(inputs: torch.Tensor, m: int, d: int) -> torch.Tensor:
    """Exact features of the limit: rows F with F F^T = m K (K the kernel matrix of `inputs`), the expected
    Gram matrix of width-m random features. Any computation that only uses inner products of features
    (fitting W, min-norm adapters, their SVD, merges, Arrow weights) run on these gives its m -> infinity
    value."""
    gram = m * arccos_kernel(inputs, inputs, d)
    vals, vecs = torch.linalg.eigh(gram)
    return vecs * vals.clamp(min=0.0).sqrt()
