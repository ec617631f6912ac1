"""Merges: each takes the experts' LoRA factors of one module and returns one LoRA (or a dense delta).

Delta-space merges compute on the weight changes Delta_e = s_e B_e A_e, as TIES and DARE are defined; the
linear ones return the concatenated weighted factors (exact, rank sum r_e). Factor-space merges compute on
A and B separately, as PEFT's `linear`/`ties`, mttl's Uniform and LoraHub do; their product carries cross
terms B_i A_j. TIES, DARE and magnitude pruning are one pipeline of small steps:
sparsify (magnitude or random) -> elect a sign per entry (total or frequency) -> combine (sum or disjoint
mean). Dense deltas are produced one expert at a time, so a merge holds about two deltas per module.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Literal

import torch

from loralab.combine.lora import Lora, concat
from loralab.errors import LoralabError

Sparsify = Literal["none", "magnitude", "random"]
Elect = Literal["total", "frequency"]


# ---------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------


def check_density(density: float) -> None:
    if not 0 < density <= 1:
        raise LoralabError(f"--opt density={density}: must be in (0, 1]")


def resolve_weights(weights: Sequence[float] | None, n: int, default: float = 1.0) -> list[float]:
    """The user's per-expert weights, or `default` for each expert."""
    if weights is None:
        return [default] * n
    if len(weights) != n:
        raise LoralabError(f"--opt weights: {len(weights)} given for {n} experts (one per expert)")
    return [float(w) for w in weights]


def magnitude_threshold(t: torch.Tensor, density: float) -> float | None:
    """The magnitude of `t`'s int(density * numel)-th largest entry (None: keep everything)."""
    if density >= 1:
        return None
    k = int(density * t.numel())
    if k == 0:
        return float("inf")
    return float(t.abs().flatten().kthvalue(t.numel() - k + 1).values)


def keep_top_magnitude(t: torch.Tensor, density: float, threshold: float | None = None) -> torch.Tensor:
    """`t` (changed in place) with all but its int(density * numel) largest-magnitude entries set to zero;
    ties at the threshold are all kept. Pass `threshold` to skip finding it again."""
    if threshold is None:
        threshold = magnitude_threshold(t, density)
    if threshold is None:
        return t
    return t.masked_fill_(t.abs() < threshold, 0.0)


def drop_random(t: torch.Tensor, density: float, seed: int) -> torch.Tensor:
    """DARE (in place): keep each entry with probability `density` (seeded Bernoulli), rescaled by
    1/density."""
    if density >= 1:
        return t
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(t.shape, generator=gen) < density
    return t.mul_(keep).div_(density)


def _mask_seed(seed: int, module: str, index: int) -> int:
    """A DARE mask seed per (seed, module, expert), so masks differ across layers and experts."""
    return zlib.crc32(f"{seed}:{module}:{index}".encode())


def sparse_merge(
    get: Callable[[int], torch.Tensor],
    weights: Sequence[float],
    sparsify: Sparsify,
    density: float,
    elect: Elect | None,
    seed: int = 0,
    module: str = "",
    fresh: bool = False,
) -> torch.Tensor:
    """sum_e w_e sparsify(T_e), or with `elect`: the disjoint mean over the entries that agree with the
    elected sign. T_e = get(e) is produced on demand (twice when electing), never all at once: besides the
    result, one T_e and the selection's scratch are alive at a time.

    The sign is elected from the unweighted sparsified tensors: "total" takes sign(sum_e T_e), "frequency"
    sign(sum_e sign(T_e)); a zero sum elects +. The disjoint mean divides sum_e w_e T_e [agrees] by the number
    of experts that agree (at least 1), as Yadav et al. 2023 and PEFT's `ties` do. `fresh`: get(e) returns a
    new tensor on every call (a computed delta), so it may be changed in place; otherwise it is copied.
    """
    check_density(density)
    thresholds: dict[int, float | None] = {}

    def term(e: int) -> torch.Tensor:
        t = get(e) if fresh else get(e).clone()
        if sparsify == "magnitude":
            if e not in thresholds:
                thresholds[e] = magnitude_threshold(t, density)
            return keep_top_magnitude(t, density, thresholds[e])
        if sparsify == "random":
            return drop_random(t, density, _mask_seed(seed, module, e))
        return t

    n = len(weights)
    if elect is None:
        total = term(0).mul_(weights[0])
        for e in range(1, n):
            total.add_(term(e), alpha=weights[e])
        return total
    mass = term(0)
    if elect == "frequency":
        mass.sign_()
    for e in range(1, n):
        t = term(e)
        mass.add_(t if elect == "total" else t.sign_())
    positive = mass >= 0
    del mass
    merged = torch.zeros(positive.shape)
    count = torch.zeros(positive.shape, dtype=torch.int16)
    for e in range(n):
        t = term(e)
        agree = torch.where(positive, t > 0, t < 0)
        merged.add_(t.mul_(agree), alpha=weights[e])
        count.add_(agree)
    return merged.div_(count.clamp_(min=1))


# ---------------------------------------------------------------------------
# Delta space
# ---------------------------------------------------------------------------


def uniform(experts: Sequence[Lora]) -> Lora:
    """(1/E) sum_e Delta_e, as concatenated factors."""
    return concat(experts, [1.0 / len(experts)] * len(experts))


def linear(experts: Sequence[Lora], weights: list[float] | None = None) -> Lora:
    """sum_e w_e Delta_e, as concatenated factors (weights default to 1)."""
    return concat(experts, resolve_weights(weights, len(experts)))


def cat(experts: Sequence[Lora], weights: list[float] | None = None) -> Lora:
    """PEFT's `cat`: A = rows[w_e s_e A_e], B = cols[B_e]; the same delta as `linear`."""
    return concat(experts, resolve_weights(weights, len(experts)))


def task_arithmetic(experts: Sequence[Lora], lam: float = 1.0) -> Lora:
    """lam * sum_e Delta_e (Ilharco et al. 2023)."""
    return concat(experts, [lam] * len(experts))


def ties(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: float = 0.2,
    elect: Elect = "total",
    lam: float = 1.0,
) -> torch.Tensor:
    """TIES on the deltas: keep the top `density` by magnitude, elect signs, disjoint mean; times lam."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(lambda e: experts[e].delta(), w, "magnitude", density, elect, fresh=True).mul_(lam)


def dare_linear(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: float = 0.5,
    seed: int = 0,
    module: str = "",
) -> torch.Tensor:
    """DARE on the deltas: drop entries with probability 1 - density, rescale by 1/density, weighted sum."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(lambda e: experts[e].delta(), w, "random", density, None, seed, module, fresh=True)


def dare_ties(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: float = 0.5,
    elect: Elect = "total",
    seed: int = 0,
    lam: float = 1.0,
    module: str = "",
) -> torch.Tensor:
    """DARE's random drop and rescale, then TIES's sign election and disjoint mean; times lam."""
    w = resolve_weights(weights, len(experts))
    return lam * sparse_merge(
        lambda e: experts[e].delta(), w, "random", density, elect, seed, module, fresh=True
    )


def magnitude_prune(
    experts: Sequence[Lora], weights: list[float] | None = None, density: float = 0.2
) -> torch.Tensor:
    """Keep each delta's top `density` entries by magnitude, then the weighted sum."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(lambda e: experts[e].delta(), w, "magnitude", density, None, fresh=True)


# ---------------------------------------------------------------------------
# Factor space
# ---------------------------------------------------------------------------


def check_equal_ranks(experts: Sequence[Lora], method: str) -> None:
    ranks = sorted({lo.rank for lo in experts})
    if len(ranks) > 1:
        raise LoralabError(
            f"--method {method}: works on the A and B factors and needs experts of equal rank; got ranks "
            f"{', '.join(map(str, ranks))} (a delta-space method such as uniform or ties handles them)"
        )


def uniform_factor(experts: Sequence[Lora]) -> Lora:
    """(mean_e s_e A_e) and (mean_e B_e): mttl's default Uniform, with cross terms B_i A_j."""
    check_equal_ranks(experts, "uniform_factor")
    n = len(experts)
    A = sum((lo.scale * lo.A.float() for lo in experts), torch.zeros_like(experts[0].A.float())) / n
    B = sum((lo.B.float() for lo in experts), torch.zeros_like(experts[0].B.float())) / n
    return Lora(A, B, 1.0)


def _factor_weights(experts: Sequence[Lora], weights: list[float] | None) -> tuple[list[float], list[float]]:
    """PEFT's split of c_e = w_e s_e over the factors: sign(c) sqrt|c| on A, sqrt|c| on B."""
    c = [w * lo.scale for w, lo in zip(resolve_weights(weights, len(experts)), experts, strict=True)]
    root = [abs(x) ** 0.5 for x in c]
    return [r if x >= 0 else -r for r, x in zip(root, c, strict=True)], root


def linear_factor(experts: Sequence[Lora], weights: list[float] | None = None) -> Lora:
    """PEFT's `linear`: A = sum_e sign(c_e) sqrt|c_e| A_e, B = sum_e sqrt|c_e| B_e with c_e = w_e s_e."""
    check_equal_ranks(experts, "linear_factor")
    wa, wb = _factor_weights(experts, weights)
    A = sparse_merge(lambda e: experts[e].A.float(), wa, "none", 1.0, None)
    B = sparse_merge(lambda e: experts[e].B.float(), wb, "none", 1.0, None)
    return Lora(A, B, 1.0)


def ties_factor(
    experts: Sequence[Lora], weights: list[float] | None = None, density: float = 0.2, elect: Elect = "total"
) -> Lora:
    """PEFT's `ties`: TIES applied to the raw A entries and, separately, to the raw B entries."""
    check_equal_ranks(experts, "ties_factor")
    wa, wb = _factor_weights(experts, weights)
    A = sparse_merge(lambda e: experts[e].A.float(), wa, "magnitude", density, elect)
    B = sparse_merge(lambda e: experts[e].B.float(), wb, "magnitude", density, elect)
    return Lora(A, B, 1.0)
