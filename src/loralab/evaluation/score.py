"""Answer extraction for the two-hop formats, accuracy with a 95% Wilson interval, and the t interval of a
mean over seeds."""

from __future__ import annotations

import math
import re

_COT = re.compile(r"Therefore, the answer is\s*(.+?)\s*(?:\.\s*$|\.\s*\n|$)", re.MULTILINE)


def extract(text: str, fmt: str) -> str:
    """The model's answer: for `cot`, X of the last "Therefore, the answer is X."; for `direct`, the first line
    (a direct answer is a sentence that names the entity)."""
    if fmt == "cot":
        found = _COT.findall(text)
        return found[-1].strip() if found else ""
    return text.strip().split("\n", 1)[0].strip()


def is_correct(extracted: str, gold: str, fmt: str) -> bool:
    """CoT: the extracted answer equals the gold entity (case-insensitive). Direct: the gold entity is named
    as a whole word in the answer sentence."""
    if fmt == "cot":
        return extracted.strip().rstrip(".").lower() == gold.lower()
    return re.search(rf"(?<![\w]){re.escape(gold)}(?![\w])", extracted, flags=re.IGNORECASE) is not None


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (0, 0 for n = 0)."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# t_{0.975, df} for df = 1..30 (the Student t distribution's 97.5% quantile); beyond, Cornish-Fisher
T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (a table to 30, then the
    Cornish-Fisher expansion around the normal quantile, within 1e-4 there)."""
    if df < 1:
        raise ValueError(f"t quantile: df must be at least 1, not {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = 1.959964
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def seed_interval(values: list[float]) -> tuple[float, float] | None:
    """(mean, half-width) of the 95% t interval over k seeds' values: mean ± t_{0.975,k-1} · sd / √k, sd the
    sample standard deviation (k - 1 in the denominator). None for fewer than two values."""
    k = len(values)
    if k < 2:
        return None
    mean = sum(values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (k - 1))
    return mean, t975(k - 1) * sd / math.sqrt(k)
