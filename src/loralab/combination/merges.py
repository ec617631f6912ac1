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
from typing import Annotated, Literal

import torch

from loralab.combination.lora import Lora, concat
from loralab.combination.registry import FRACTION, SEED
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
    """The user's per-expert weights, or `default` for each expert; a single weight is every expert's."""
    if weights is None:
        return [default] * n
    if len(weights) == 1:
        return [float(weights[0])] * n
    if len(weights) != n:
        raise LoralabError(f"--opt weights: {len(weights)} given for {n} experts (one per expert)")
    return [float(w) for w in weights]


BLOCK_ELEMENTS = 1 << 16
"""About this many entries (whole rows) of a tensor are processed at once. A merge holds its result, a sign
bit and a vote count per entry, and one block of rows of one expert's tensor; it never holds a whole delta of
an expert. (The block layout also fixes DARE's masks: each block draws its own seeded mask.)"""

Getter = Callable[[int, slice], torch.Tensor]
"""(expert index, row range) -> those rows of the expert's tensor, float32, a new tensor (changed in place)."""


def _blocks(shape: tuple[int, int]) -> list[slice]:
    step = max(1, BLOCK_ELEMENTS // max(1, shape[1]))
    return [slice(i, min(i + step, shape[0])) for i in range(0, shape[0], step)]


def _magnitude_bits(t: torch.Tensor) -> torch.Tensor:
    """|t| as int32 bit patterns: for non-negative float32 values the bit patterns sort like the values."""
    return t.contiguous().view(torch.int32).bitwise_and(0x7FFFFFFF)


def _bucket_from_top(hist: torch.Tensor, k: int) -> tuple[int, int]:
    """The bucket that holds the k-th largest item of a histogram, and k's rank inside that bucket."""
    from_top = hist.flip(0).cumsum(0)
    i = int(torch.searchsorted(from_top, torch.tensor([k])).item())
    bucket = hist.numel() - 1 - i
    return bucket, k - (int(from_top[i]) - int(hist[bucket]))


def magnitude_threshold(get: Getter, e: int, shape: tuple[int, int], density: float) -> int | None:
    """The int(density * numel)-th largest |value| of expert e's tensor, as float32 bits (None: keep all).

    Exact, found block by block without holding the tensor: a radix select over the bit patterns, first on
    their high 16 bits, then on the low 16 bits inside the chosen bucket (two passes over the rows).
    """
    if density >= 1:
        return None
    k = int(density * shape[0] * shape[1])
    if k == 0:
        return 0x7FFFFFFF  # keeps nothing
    hist = torch.zeros(65536, dtype=torch.int64)
    for rows in _blocks(shape):
        hist += torch.bincount((_magnitude_bits(get(e, rows)) >> 16).flatten().long(), minlength=65536)
    high, rank = _bucket_from_top(hist, k)
    hist.zero_()
    for rows in _blocks(shape):
        bits = _magnitude_bits(get(e, rows))
        low = bits[(bits >> 16) == high].bitwise_and(0xFFFF)
        hist += torch.bincount(low.long(), minlength=65536)
    low_bucket, _ = _bucket_from_top(hist, rank)
    return (high << 16) | low_bucket


def keep_top_magnitude(t: torch.Tensor, threshold: int | None) -> torch.Tensor:
    """`t` (changed in place) with the entries below `threshold` (float32 bits of a magnitude) set to zero;
    ties at the threshold are all kept."""
    if threshold is None:
        return t
    return t.masked_fill_(_magnitude_bits(t) < threshold, 0.0)


def drop_random(t: torch.Tensor, density: float, seed: int) -> torch.Tensor:
    """DARE (in place): keep each entry with probability `density` (seeded Bernoulli), rescaled by
    1/density."""
    if density >= 1:
        return t
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(t.shape, generator=gen) < density
    return t.mul_(keep).div_(density)


def _mask_seed(seed: int, module: str, index: int, block: int) -> int:
    """A DARE mask seed per (seed, module, expert, row block), so masks differ everywhere."""
    return zlib.crc32(f"{seed}:{module}:{index}:{block}".encode())


def sparse_merge(
    get: Getter,
    shape: tuple[int, int],
    weights: Sequence[float],
    sparsify: Sparsify,
    density: float,
    elect: Elect | None,
    seed: Annotated[int, SEED] = 0,
    module: str = "",
) -> torch.Tensor:
    """sum_e w_e sparsify(T_e), or with `elect`: the disjoint mean over the entries that agree with the
    elected sign. T_e's rows come from `get` block by block (see BLOCK_ROWS), several times per expert.

    The sign is elected from the unweighted sparsified tensors: "total" takes sign(sum_e T_e), "frequency"
    sign(sum_e sign(T_e)); a zero sum elects +. The disjoint mean divides sum_e w_e T_e [agrees] by the number
    of experts that agree (at least 1), as Yadav et al. 2023 and PEFT's `ties` do.
    """
    check_density(density)
    n = len(weights)
    blocks = _blocks(shape)
    thresholds = [
        magnitude_threshold(get, e, shape, density) if sparsify == "magnitude" else None for e in range(n)
    ]

    def term(e: int, b: int) -> torch.Tensor:
        t = get(e, blocks[b])
        if sparsify == "magnitude":
            return keep_top_magnitude(t, thresholds[e])
        if sparsify == "random":
            return drop_random(t, density, _mask_seed(seed, module, e, b))
        return t

    out = torch.zeros(shape)
    if elect is None:
        for e in range(n):
            for b, rows in enumerate(blocks):
                out[rows].add_(term(e, b), alpha=weights[e])
        return out
    for e in range(n):  # pass 1: the sign mass, in the result's buffer
        for b, rows in enumerate(blocks):
            t = term(e, b)
            out[rows].add_(t if elect == "total" else t.sign_())
    positive = out >= 0
    out.zero_()
    count = torch.zeros(shape, dtype=torch.uint8 if n < 256 else torch.int16)
    for e in range(n):  # pass 2: sum and count the agreeing entries
        for b, rows in enumerate(blocks):
            t = term(e, b)
            agree = torch.where(positive[rows], t > 0, t < 0)
            out[rows].add_(t.mul_(agree), alpha=weights[e])
            count[rows].add_(agree)
    return out.div_(count.clamp_(min=1))


def _deltas(experts: Sequence[Lora]) -> tuple[Getter, tuple[int, int]]:
    """Row blocks of the experts' deltas s_e B_e A_e, computed on demand."""
    shape = (int(experts[0].B.shape[0]), int(experts[0].A.shape[1]))
    return (lambda e, rows: experts[e].delta(rows)), shape


def _factor(experts: Sequence[Lora], which: Literal["A", "B"]) -> tuple[Getter, tuple[int, int]]:
    """Row blocks of the experts' raw A or B factors (copies)."""
    first = getattr(experts[0], which)
    return (lambda e, rows: getattr(experts[e], which)[rows].float().clone()), (
        int(first.shape[0]),
        int(first.shape[1]),
    )


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
    density: Annotated[float, FRACTION] = 0.2,
    elect: Elect = "total",
    lam: float = 1.0,
) -> torch.Tensor:
    """TIES on the deltas: keep the top `density` by magnitude, elect signs, disjoint mean; times lam."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(*_deltas(experts), w, "magnitude", density, elect).mul_(lam)


def dare_linear(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: Annotated[float, FRACTION] = 0.5,
    seed: Annotated[int, SEED] = 0,
    module: str = "",
) -> torch.Tensor:
    """DARE on the deltas: drop entries with probability 1 - density, rescale by 1/density, weighted sum."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(*_deltas(experts), w, "random", density, None, seed, module)


def dare_ties(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: Annotated[float, FRACTION] = 0.5,
    elect: Elect = "total",
    seed: Annotated[int, SEED] = 0,
    lam: float = 1.0,
    module: str = "",
) -> torch.Tensor:
    """DARE's random drop and rescale, then TIES's sign election and disjoint mean; times lam."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(*_deltas(experts), w, "random", density, elect, seed, module).mul_(lam)


def magnitude_prune(
    experts: Sequence[Lora], weights: list[float] | None = None, density: Annotated[float, FRACTION] = 0.2
) -> torch.Tensor:
    """Keep each delta's top `density` entries by magnitude, then the weighted sum."""
    w = resolve_weights(weights, len(experts))
    return sparse_merge(*_deltas(experts), w, "magnitude", density, None)


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
    A = sparse_merge(*_factor(experts, "A"), wa, "none", 1.0, None)
    B = sparse_merge(*_factor(experts, "B"), wb, "none", 1.0, None)
    return Lora(A, B, 1.0)


def ties_factor(
    experts: Sequence[Lora],
    weights: list[float] | None = None,
    density: Annotated[float, FRACTION] = 0.2,
    elect: Elect = "total",
) -> Lora:
    """PEFT's `ties`: TIES applied to the raw A entries and, separately, to the raw B entries."""
    check_equal_ranks(experts, "ties_factor")
    wa, wb = _factor_weights(experts, weights)
    A = sparse_merge(*_factor(experts, "A"), wa, "magnitude", density, elect)
    B = sparse_merge(*_factor(experts, "B"), wb, "magnitude", density, elect)
    return Lora(A, B, 1.0)
