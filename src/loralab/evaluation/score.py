"""Answer extraction for the two-hop formats, and accuracy with a 95% Wilson interval."""

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
