"""Arrow routing (Ostapenko et al. 2024): per token and layer, route to the experts whose prototype lines up.

All experts of a layer are stacked, so a forward pass is two batched matmuls whatever the number of experts:
h = x @ A_cat^T (N x E*r), scaled per expert by its routing coefficient, then y += h @ B_cat^T.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from loralab.combine.registry import MethodSpec
from loralab.errors import LoralabError
from loralab.experts.library import ADAPTER_WEIGHTS, Expert

PROTOTYPES = "arrow_prototypes.safetensors"


def prototype(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """The top right singular vector of B @ A (unit norm, exact), without forming B @ A.

    A^T = Q R gives B A = (B R^T) Q^T; with B R^T = U S V^T, the right singular vectors of B A are Q V.
    """
    q, rr = torch.linalg.qr(A.double().T)
    _, _, vh = torch.linalg.svd(B.double() @ rr.T, full_matrices=False)
    p = q @ vh[0]
    return (p / p.norm()).float()


def prototypes(expert: Expert) -> dict[str, torch.Tensor]:
    """Every module's prototype for `expert`, cached beside its adapter weights (recomputed if they change)."""
    from safetensors.torch import load_file, save_file

    cache = expert.path / PROTOTYPES
    stamp = _stamp(expert.path / ADAPTER_WEIGHTS)
    if cache.is_file():
        try:
            stored = load_file(str(cache))
            if (
                stored.get("__stamp__") is not None
                and stored["__stamp__"].tolist() == stamp
                and all(m in stored for m in expert.modules)
            ):
                return {m: stored[m] for m in expert.modules}
        except Exception:  # a broken cache is just recomputed
            pass
    protos = {m: prototype(expert.A[m], expert.B[m]) for m in expert.modules}
    tmp = cache.with_name(f".{cache.name}.tmp")
    try:
        save_file({**protos, "__stamp__": torch.tensor(stamp)}, str(tmp))
        os.replace(tmp, cache)
    except OSError:  # a read-only library still works, just without the cache
        tmp.unlink(missing_ok=True)
    return protos


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns % (2**62)]


class ArrowLinear(nn.Module):
    """A linear layer plus E stacked LoRA experts mixed per token by Arrow's routing."""

    A_cat: torch.Tensor
    B_cat: torch.Tensor
    scaling: torch.Tensor
    prototypes: torch.Tensor

    def __init__(
        self,
        base: nn.Linear,
        A: torch.Tensor,
        B: torch.Tensor,
        scaling: torch.Tensor,
        protos: torch.Tensor,
        top_k: int,
        temperature: float,
    ) -> None:
        super().__init__()
        n_exp, r, d_in = A.shape
        self.base = base
        self.n_experts, self.rank = n_exp, r
        self.top_k, self.temperature = min(top_k, n_exp), temperature
        dtype = base.weight.dtype
        self.register_buffer("A_cat", A.reshape(n_exp * r, d_in).to(dtype))
        self.register_buffer("B_cat", B.permute(1, 0, 2).reshape(B.shape[1], n_exp * r).to(dtype))
        self.register_buffer("scaling", scaling.to(dtype))
        self.register_buffer("prototypes", protos.to(dtype))
        self.last_coefficients: torch.Tensor | None = None

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Routing weights (N x E): softmax(|x.p_e| / T) over the top_k experts, zero elsewhere."""
        scores = (x @ self.prototypes.T).abs()
        top, idx = scores.topk(self.top_k, dim=-1)
        weights = torch.softmax(top.float() / self.temperature, dim=-1).to(x.dtype)
        return torch.zeros_like(scores).scatter(-1, idx, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        flat = x.reshape(-1, x.shape[-1]).to(self.A_cat.dtype)
        coeff = self.coefficients(flat)
        self.last_coefficients = coeff.detach()
        h = (flat @ self.A_cat.T).view(-1, self.n_experts, self.rank)
        h = (h * (coeff * self.scaling).unsqueeze(-1)).view(flat.shape[0], -1)
        return y + (h @ self.B_cat.T).view(*x.shape[:-1], -1).to(y.dtype)


def install_arrow(model: Any, experts: list[Expert], top_k: int = 3, temperature: float = 1.0) -> Any:
    """Replace every adapted linear layer of `model` by an `ArrowLinear` over `experts` (in place)."""
    if top_k < 1:
        raise LoralabError(f"--opt top_k={top_k}: must be at least 1")
    if temperature <= 0:
        raise LoralabError(f"--opt temperature={temperature}: must be positive")
    protos = [prototypes(e) for e in experts]
    rank = max(e.r for e in experts)
    for module in experts[0].modules:
        parent_name, _, child = module.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = getattr(parent, child)
        # experts of lower rank are zero-padded: extra rows of A and columns of B add nothing
        A = torch.stack([_pad_rows(e.A[module].float(), rank) for e in experts])
        B = torch.stack([_pad_rows(e.B[module].float().T, rank).T for e in experts])
        scaling = torch.tensor([e.scaling for e in experts])
        P = torch.stack([p[module] for p in protos])
        routed = ArrowLinear(base, A, B, scaling, P, top_k, temperature).to(base.weight.device)
        setattr(parent, child, routed)
    return model


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(rows - t.shape[0], t.shape[1])]) if t.shape[0] < rows else t


ARROW = MethodSpec(
    name="arrow",
    kind="router",
    description="per-token routing to the experts whose top singular direction lines up with the input",
    formula=(
        "p_e = top right singular vector of B_e A_e; c = softmax(top_k(|x.p_e|) / T); "
        "y = W x + sum_e c_e s_e B_e A_e x  (output mixture, as PEFT's Arrow)"
    ),
    paper="Ostapenko et al. 2024, Towards Modular LLMs by Building and Reusing a Library of LoRAs",
    fn=install_arrow,
)
