"""One module's LoRA factors, and the two ways to turn a merged weight change back into LoRA form.

Every merge in loralab works on the experts' factors of one adapted linear layer at a time: a `Lora` holds
A (r x in), B (out x r) and the scaling s, and its weight change is s * B @ A. A merge returns either a `Lora`
(when the result has a known low-rank layout, e.g. the concatenation of weighted factors) or a dense delta,
which `refactor` decomposes exactly (SVD at numerical rank) or truncates to a chosen rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from loralab.errors import LoralabError


@dataclass(frozen=True)
class Lora:
    """LoRA factors of one module: delta = scale * B @ A."""

    A: torch.Tensor
    B: torch.Tensor
    scale: float = 1.0

    @property
    def rank(self) -> int:
        return int(self.A.shape[0])

    def delta(self, rows: slice | None = None) -> torch.Tensor:
        """The dense weight change (out x in), or only its `rows`; float32, a new tensor."""
        B = self.B if rows is None else self.B[rows]
        return (B.float() @ self.A.float()).mul_(self.scale)


def concat(loras: Sequence[Lora], coefficients: Sequence[float]) -> Lora:
    """Concatenated weighted factors: A = rows[c_e s_e A_e], B = cols[B_e], scale 1.

    Exact: B @ A = sum_e c_e s_e B_e A_e, at rank sum_e r_e (PEFT's `cat` layout).
    """
    A = torch.cat([float(c) * lo.scale * lo.A.float() for lo, c in zip(loras, coefficients, strict=True)])
    B = torch.cat([lo.B.float() for lo in loras], dim=1)
    return Lora(A, B, 1.0)


def refactor(delta: torch.Tensor, rank: int | None = None, what: str = "the delta") -> tuple[Lora, float]:
    """`delta` as LoRA factors, and the fraction of its energy (squared Frobenius norm) they keep.

    rank None: exact, every singular value above float32 round-off (the numerical rank); else the top `rank`
    singular directions (truncated SVD, the best rank-`rank` approximation); a `rank` above the delta's smaller
    side is an error (naming `what`), not a silent truncation to that side. float32 throughout, as the
    adapters are. The singular values are split
    evenly between the factors (A = sqrt(S) V^T, B = U sqrt(S)) so neither factor dwarfs the other.
    """
    if rank is not None and rank < 1:
        raise LoralabError(f"--opt rank={rank}: must be at least 1")
    if rank is not None and rank > min(delta.shape):  # it would keep everything, and say rank r did
        side = min(delta.shape)
        raise LoralabError(f"--opt rank={rank}: larger than {what}'s smaller side ({side}); use at most that")
    U, S, Vh = torch.linalg.svd(delta.float(), full_matrices=False)
    total = float((S.double() ** 2).sum())
    if rank is None:
        tol = float(S[0]) * max(delta.shape) * torch.finfo(torch.float32).eps if S.numel() else 0.0
        k = max(1, int((tol < S).sum()))
    else:
        k = rank
    root = S[:k].sqrt()
    lora = Lora(root[:, None] * Vh[:k], U[:, :k] * root, 1.0)
    kept = float((S[:k].double() ** 2).sum())
    return lora, (kept / total if total > 0 else 1.0)


def pad_rank(lora: Lora, rank: int) -> Lora:
    """The same delta at a larger rank (zero rows of A, zero columns of B), with the scale folded in."""
    extra = rank - lora.rank
    A = lora.scale * lora.A.float()
    B = lora.B.float()
    if extra > 0:
        A = torch.cat([A, A.new_zeros(extra, A.shape[1])])
        B = torch.cat([B, B.new_zeros(B.shape[0], extra)], dim=1)
    return Lora(A, B, 1.0)
