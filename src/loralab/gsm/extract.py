"""Final-answer extraction from a math solution and numeric grading against the gold answer.

The answer is looked for in this order, and the first marker present decides: the last `\\boxed{...}`
(nested braces allowed), then the last "the answer is ...", then the last `#### N` (GSM8K's gold format),
then the last number anywhere in the text. A marker whose content holds no number is "no answer": a
declared non-numeric answer is not rescued by a number from the reasoning before it.

Numbers may carry thousands commas (1,000; LaTeX 1{,}000), a currency sign ($, \\$), a percent sign (50%
reads as 50), a sign (-3, the Unicode minus), decimals (32.50 reads as 32.5), a LaTeX fraction
(\\frac{1}{2}, \\dfrac, a mixed 3\\frac{1}{2}) or a plain fraction (3/4) in a marked answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

ANSWER_METHODS = ("boxed", "answer-is", "hash", "last-number")

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
# a minus sign counts only where it cannot be a subtraction ("5-3" has no -3 in it)
_SIGNED = re.compile(rf"(?<![\w)\].])-{_NUMBER}|{_NUMBER}")
_FRAC = re.compile(r"(-)?\s*(\d+)?\s*\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_SLASH = re.compile(rf"(?<![\w)\].])(-)?({_NUMBER})\s*/\s*({_NUMBER})(?![\d.])")
_ANSWER_IS = re.compile(r"the (?:final )?answer is\s*:?", re.IGNORECASE)
_HASH = re.compile(r"####\s*")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")


@dataclass(frozen=True)
class Grade:
    """One prediction scored: the marked answer text, its numeric value and whether it equals the gold.

    `status` is "correct", "wrong" or "no answer" (nothing numeric could be read)."""

    answer: str | None
    value: float | None
    method: str | None
    correct: bool

    @property
    def status(self) -> str:
        if self.correct:
            return "correct"
        return "no answer" if self.value is None else "wrong"


def _clean(text: str) -> str:
    """Drop what decorates a number but does not change it: currency, percent, LaTeX spacing and commas."""
    for old, new in (
        ("\u2212", "-"),
        ("{,}", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\%", ""),
        ("%", ""),
    ):
        text = text.replace(old, new)
    return text


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


def _first_number(text: str) -> float | None:
    """The value of the first number in a marked answer: a LaTeX or plain fraction if the answer starts
    with one, else the first (signed) number."""
    text = _clean(text)
    frac = _FRAC.search(text)
    plain = _SIGNED.search(text)
    if frac and (plain is None or frac.start() <= plain.start()):
        sign, whole, num, den = frac.groups()
        try:
            value = (_to_float(whole) if whole else 0.0) + _to_float(num) / _to_float(den)
        except (ValueError, ZeroDivisionError):
            return None
        return -value if sign else value
    slash = _SLASH.search(text)
    if slash and plain is not None and slash.start() == plain.start():
        sign, num, den = slash.groups()
        if _to_float(den) != 0:
            value = _to_float(num) / _to_float(den)
            return -value if sign else value
    if plain is None:
        return None
    return _to_float(plain.group(0))


def _last_number(text: str) -> tuple[str, float] | None:
    found = list(_SIGNED.finditer(_clean(text)))
    if not found:
        return None
    token = found[-1].group(0)
    return token, _to_float(token)


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces kept; `\\boxed 5` reads as
    5. None if there is none or its braces never close."""
    starts = list(_BOXED.finditer(text))
    if not starts:
        return None
    i = starts[-1].end()
    if i >= len(text):
        return None
    if text[i] != "{":
        word = re.match(r"[^\s$]+", text[i:])
        return word.group(0) if word else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def extract_answer(text: str) -> tuple[str, str] | None:
    """(method, answer text) of the first marker present in the order boxed, "the answer is", `####`, last
    number; None when the text has none of them."""
    boxed = last_boxed(text)
    if boxed is not None:
        return "boxed", boxed.strip()
    for method, pattern in (("answer-is", _ANSWER_IS), ("hash", _HASH)):
        found = list(pattern.finditer(text))
        if found:
            rest = text[found[-1].end() :].strip()
            return method, rest.split("\n\n", 1)[0].strip()
    last = _last_number(text)
    return ("last-number", last[0]) if last else None


def answer_value(text: str) -> tuple[str | None, str | None, float | None]:
    """(method, answer text, numeric value) of a solution; value None when nothing numeric was found."""
    found = extract_answer(text)
    if found is None:
        return None, None, None
    method, answer = found
    return method, answer, _first_number(answer)


def numbers_match(a: float, b: float, rel_tol: float = 1e-9, abs_tol: float = 1e-6) -> bool:
    """Equal up to `abs_tol` or a relative `rel_tol` (32.5 and 32.50 match; 0.1 + 0.2 matches 0.3)."""
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)


def gold_value(gold: float | int | str) -> float:
    """The gold answer as a number: a number as is, a string through the same extraction as a prediction
    (so "1,000", "$18" and a GSM8K solution ending in "#### 72" all work)."""
    if isinstance(gold, (int, float)):
        return float(gold)
    value = answer_value(str(gold))[2]
    if value is None:
        raise ValueError(f"gold answer {gold!r} holds no number")
    return value


def grade(text: str, gold: float | int | str, rel_tol: float = 1e-9, abs_tol: float = 1e-6) -> Grade:
    """Score one model output against the gold answer; text without a number scores "no answer"."""
    target = gold_value(gold)
    method, answer, value = answer_value(text)
    correct = value is not None and numbers_match(value, target, rel_tol, abs_tol)
    return Grade(answer=answer, value=value, method=method, correct=correct)
