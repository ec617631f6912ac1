"""The routed linear layer: a base linear layer plus E stacked LoRA experts mixed per token.

All experts of a layer are stacked, so a forward pass is two matmuls whatever E is:
h = x @ A_cat^T (N x E*r), weighted per expert by its routing coefficient, then y += h @ B_cat^T.
A router gives the coefficients c (N x E); two mixes are offered, because libraries differ:

- `output` (PEFT's Arrow):  y = W x + sum_e c_e s_e B_e A_e x
- `params` (mttl's default): y = W x + (sum_e c_e B_e)(sum_e c_e s_e A_e) x, per token, with cross terms.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from loralab.errors import LoralabError

Mix = Literal["output", "params"]


class ArrowRouter(nn.Module):
    """c = softmax(top_k(|x . p_e|) / T) over the kept experts, zero elsewhere (Ostapenko et al. 2024)."""

    prototypes: torch.Tensor

    def __init__(self, prototypes: torch.Tensor, top_k: int, temperature: float) -> None:
        super().__init__()
        self.register_buffer("prototypes", prototypes)
        self.top_k, self.temperature = min(top_k, prototypes.shape[0]), temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = (x @ self.prototypes.T.to(x.dtype)).abs()
        top, idx = scores.topk(self.top_k, dim=-1)
        weights = torch.softmax(top.float() / self.temperature, dim=-1).to(x.dtype)
        return torch.zeros_like(scores).scatter(-1, idx, weights)


class FixedRouter(nn.Module):
    """The same coefficients for every token: 1/E (mu-routing), a one-hot, or weights being learned."""

    def __init__(self, weights: torch.Tensor, trainable: bool = False) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights.clone(), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights.to(x.dtype).expand(x.shape[0], -1)


class RoutedLinear(nn.Module):
    """`base` plus E LoRA experts (A: E x r x in, B: E x out x r, scaling: E) mixed per token."""

    A_cat: torch.Tensor
    B_cat: torch.Tensor
    scaling: torch.Tensor

    def __init__(
        self,
        base: nn.Linear,
        A: torch.Tensor,
        B: torch.Tensor,
        scaling: torch.Tensor,
        router: nn.Module,
        mix: Mix = "output",
    ) -> None:
        super().__init__()
        if mix not in ("output", "params"):
            raise LoralabError(f"--opt mix={mix}: choose output or params")
        n_exp, r, d_in = A.shape
        self.base, self.router, self.mix = base, router, mix
        self.n_experts, self.rank = n_exp, r
        dtype = base.weight.dtype
        self.register_buffer("A_cat", A.reshape(n_exp * r, d_in).to(dtype))
        self.register_buffer("B_cat", B.permute(1, 0, 2).reshape(B.shape[1], n_exp * r).to(dtype))
        self.register_buffer("scaling", scaling.to(dtype))
        self.last_coefficients: torch.Tensor | None = None

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The routing coefficients (N x E) for a batch of N input vectors."""
        return self.router(x.reshape(-1, x.shape[-1]).to(self.A_cat.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        flat = x.reshape(-1, x.shape[-1]).to(self.A_cat.dtype)
        coeff = self.router(flat)
        self.last_coefficients = coeff.detach()
        h = (flat @ self.A_cat.T).view(-1, self.n_experts, self.rank)
        cs = (coeff * self.scaling).unsqueeze(-1)
        # params: one mixed A per token, then one mixed B: (sum c B)(sum c s A) x
        h = h * cs if self.mix == "output" else coeff.unsqueeze(-1) * (h * cs).sum(dim=1, keepdim=True)
        return y + (h.reshape(flat.shape[0], -1) @ self.B_cat.T).view(*x.shape[:-1], -1).to(y.dtype)


def stack_experts(
    loras: list[tuple[torch.Tensor, torch.Tensor]], equal_ranks: bool, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (A, B) pairs to E x r x in and E x out x r; lower ranks are zero-padded (exact for the output
    mix: the extra rows of A and columns of B add nothing), or refused when `equal_ranks`."""
    ranks = sorted({a.shape[0] for a, _ in loras})
    if equal_ranks and len(ranks) > 1:
        raise LoralabError(
            f"--method {method} with mix=params mixes A and B entry by entry and needs experts of equal "
            f"rank; got ranks {', '.join(map(str, ranks))} (use mix=output)"
        )
    r = ranks[-1]
    A = torch.stack(
        [torch.cat([a.float(), a.new_zeros(r - a.shape[0], a.shape[1]).float()]) for a, _ in loras]
    )
    B = torch.stack(
        [torch.cat([b.float(), b.new_zeros(b.shape[0], r - b.shape[1]).float()], dim=1) for _, b in loras]
    )
    return A, B
