"""Error analysis of math solutions (the paper's Appendix A.4): per example, the solution type and the error
type, by rules; optionally a second opinion from an LLM judge behind an OpenAI-compatible endpoint.

Solution type: "code" (a ```python block or Python statements), "natural language" (text with numbers),
"none" (empty, or no number and no code).

Error type, the first that applies: "none" (the answer is correct); "calculation" (an arithmetic statement
"a op b = c" in the prose is false: re-evaluated, it misses c by more than the rounding c's written
precision allows); "step missing" (a solution with fewer computation steps than the reference solution
has); "semantic" (the rest: a wrong plan, a misread question, no solution at all).

A computation step is an arithmetic statement in prose, or in code a statement (assignment, return,
expression) that computes with an arithmetic operator.
"""

from __future__ import annotations

import ast
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

from loralab.errors import LoralabError
from loralab.gsm.extract import Grade, grade

SOLUTION_TYPES = ("natural language", "code", "none")
ERROR_TYPES = ("none", "calculation", "step missing", "semantic")

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_OPERAND = rf"[(\s]*-?\s*{_NUM}%?[)\s]*"
_OP = r"[-+*/^]"
_STATEMENT = re.compile(
    rf"(?<![\w.,])(?P<expr>{_OPERAND}(?:{_OP}{_OPERAND})+)(?<![=<>!])=(?!=)\s*(?P<claim>-?\s*{_NUM})(?P<pct>%?)"
    rf"(?![\d.,]*\s*[-+*/^]\s*\(?\s*\d)(?![\d]|[.,]\d)"
)
_FENCED = re.compile(r"```(?:python|py)?[ \t]*\n.*?(?:```|\Z)|```output\n.*?(?:```|\Z)", re.DOTALL)
_PY_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_LINE = re.compile(r"^\s*(?:def \w+\(|print\(|return\b|import \w+|from [\w.]+ import )", re.MULTILINE)
_TOKEN = re.compile(rf"\s*(?:(?P<num>{_NUM})(?P<pct>%?)|(?P<op>[-+*/^()]))")
_LATEX = (
    (re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:times|cdot)"), "*"),
    (re.compile(r"\\div"), "/"),
    (re.compile(r"\\[()\[\],!]|\\text\{[^{}]*\}|\{,\}|\$"), ""),
)


@dataclass(frozen=True)
class Statement:
    """An arithmetic statement found in prose: `expression = claimed`, and its re-evaluated value."""

    expression: str
    claimed: float
    value: float | None
    ok: bool


@dataclass(frozen=True)
class Analysis:
    """One example analysed: the grade, the solution and error types, the steps counted and the false
    statements found."""

    grade: Grade
    solution_type: str
    error_type: str
    steps: int
    false_statements: tuple[Statement, ...] = ()


def _plain(text: str) -> str:
    """Prose arithmetic in one notation: LaTeX operators and fractions rewritten, ×/÷/− as */'/'/-, currency
    and LaTeX spacing dropped."""
    text = text.replace("\u2212", "-").replace("×", "*").replace("÷", "/").replace("·", "*")
    for pattern, repl in _LATEX:
        text = pattern.sub(repl, text)
    return re.sub(r"(?<=[\d)%])\s*x\s*(?=[\d(])", " * ", text)


class _Arithmetic:
    """A recursive-descent evaluator for + - * / ^ and parentheses over numbers (n% reads as n/100); no eval."""

    def __init__(self, expr: str) -> None:
        self.tokens: list[tuple[str, float | str]] = []
        pos = 0
        expr = expr.rstrip()
        while pos < len(expr):
            m = _TOKEN.match(expr, pos)
            if m is None:
                raise ValueError(f"cannot read {expr[pos:]!r}")
            if m.group("num") is not None:
                value = float(m.group("num").replace(",", ""))
                self.tokens.append(("num", value / 100 if m.group("pct") else value))
            else:
                self.tokens.append(("op", m.group("op")))
            pos = m.end()
        self.i = 0

    def value(self) -> float:
        out = self._sum()
        if self.i != len(self.tokens):
            raise ValueError("trailing tokens")
        return out

    def _peek(self) -> float | str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _sum(self) -> float:
        out = self._product()
        while self._peek() in ("+", "-"):
            op = self.tokens[self.i][1]
            self.i += 1
            rhs = self._product()
            out = out + rhs if op == "+" else out - rhs
        return out

    def _product(self) -> float:
        out = self._power()
        while self._peek() in ("*", "/"):
            op = self.tokens[self.i][1]
            self.i += 1
            rhs = self._power()
            out = out * rhs if op == "*" else out / rhs
        return out

    def _power(self) -> float:
        base = self._unary()
        if self._peek() == "^":
            self.i += 1
            exponent = self._power()
            if abs(exponent) > 64:
                raise ValueError("exponent too large")
            return float(base**exponent)
        return base

    def _unary(self) -> float:
        if self._peek() == "-":
            self.i += 1
            return -self._unary()
        if self._peek() == "(":
            self.i += 1
            out = self._sum()
            if self._peek() != ")":
                raise ValueError("unbalanced parenthesis")
            self.i += 1
            return out
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "num":
            number = self.tokens[self.i][1]
            self.i += 1
            return float(number)
        raise ValueError("expected a number")


def evaluate(expression: str) -> float | None:
    """The value of an arithmetic expression (numbers, + - * / ^, parentheses, n%); None if it cannot be
    read or divides by zero."""
    try:
        return _Arithmetic(expression).value()
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _prose(text: str) -> str:
    """The text without its code and output blocks (their numbers come from execution, not from the model's
    arithmetic)."""
    return _FENCED.sub("\n", text)


def _balanced(expr: str) -> str:
    """Drop unmatched leading "(" and trailing ")" the statement pattern may have taken from the prose."""
    expr = expr.strip()
    while expr.startswith("(") and expr.count("(") > expr.count(")"):
        expr = expr[1:].lstrip()
    while expr.endswith(")") and expr.count(")") > expr.count("("):
        expr = expr[:-1].rstrip()
    return expr


def arithmetic_statements(text: str) -> list[Statement]:
    """Every "a op b (op c ...) = c" statement in the prose of `text`, re-evaluated. A statement is ok when
    the value rounds to the claim at the claim's written precision (10 / 3 = 3.33 is ok, 3 + 4 = 8 is not);
    a claimed percentage is compared as a percentage (1 / 4 = 25% is ok)."""
    out = []
    for m in _STATEMENT.finditer(_plain(_prose(text))):
        expr = _balanced(m.group("expr"))
        claim_text = m.group("claim").replace(" ", "").replace(",", "")
        shown = float(claim_text)
        decimals = len(claim_text.split(".")[1]) if "." in claim_text else 0
        value = evaluate(expr)
        scale = 100.0 if m.group("pct") else 1.0
        ok = value is not None and abs(value * scale - shown) <= 0.5 * 10**-decimals + 1e-9 * max(
            1.0, abs(shown)
        )
        out.append(Statement(expr, shown / scale, value, ok))
    return out


def _code_steps(code: str) -> int:
    arithmetic = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return sum(1 for line in code.splitlines() if re.search(r"\w\s*[-+*/%]\s*[\w(]", line))
    steps = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr)):
            augmented = isinstance(node, ast.AugAssign) and isinstance(node.op, arithmetic)
            if augmented or any(
                isinstance(n, ast.BinOp) and isinstance(n.op, arithmetic) for n in ast.walk(node)
            ):
                steps += 1
    return steps


def code_blocks(text: str) -> list[str]:
    """The contents of the ```python blocks of `text`."""
    return [m.group(1) for m in _PY_BLOCK.finditer(text)]


def solution_type(text: str) -> str:
    """ "code", "natural language" or "none" (see the module docstring)."""
    if code_blocks(text) or len(_PY_LINE.findall(text)) >= 2:
        return "code"
    return "natural language" if re.search(r"\d", text) else "none"


def count_steps(text: str) -> int:
    """Computation steps: arithmetic statements in the prose plus computing statements in the code (a bare
    Python solution without fences counts as code)."""
    blocks = code_blocks(text)
    if not blocks and solution_type(text) == "code":
        return _code_steps(text)
    return len(arithmetic_statements(text)) + sum(_code_steps(b) for b in blocks)


def analyze(
    text: str, gold: float | int | str, reference_steps: int | None = None, rel_tol: float = 1e-9
) -> Analysis:
    """Grade `text` against `gold` and classify it; `reference_steps` is the number of computation steps of
    the reference solution (e.g. the template's computation graph); without it "step missing" is never
    assigned."""
    g = grade(text, gold, rel_tol=rel_tol)
    stype = solution_type(text)
    statements = arithmetic_statements(text)
    false = tuple(s for s in statements if not s.ok)
    steps = count_steps(text)
    if g.correct:
        error = "none"
    elif false:
        error = "calculation"
    elif reference_steps is not None and stype != "none" and steps < reference_steps:
        error = "step missing"
    else:
        error = "semantic"
    return Analysis(g, stype, error, steps, false)


def tally(analyses: Iterable[Analysis]) -> dict[str, dict[str, int]]:
    """Counts of error types per solution type, every cell present (zeros included)."""
    table = {s: dict.fromkeys(ERROR_TYPES, 0) for s in SOLUTION_TYPES}
    for a in analyses:
        table[a.solution_type][a.error_type] += 1
    return table


# ---------------------------------------------------------------------------------------------------------
# Optional LLM judge
# ---------------------------------------------------------------------------------------------------------

JUDGE_URL_ENV = "LORALAB_JUDGE_URL"
JUDGE_KEY_ENV = "LORALAB_JUDGE_API_KEY"
JUDGE_SYSTEM = (
    "You classify the error in a student's solution to a math word problem. Answer with exactly one label "
    "on the first line: calculation (an arithmetic step is computed wrongly), step missing (a necessary "
    "computation step is left out), semantic (the problem is misunderstood or the plan is wrong), or none "
    "(the solution is correct). Then give one sentence of reason."
)


@dataclass(frozen=True)
class Verdict:
    """The judge's label (one of ERROR_TYPES, or None if its reply named none) and its whole reply."""

    label: str | None
    reply: str


def _judge_label(reply: str) -> str | None:
    first = reply.strip().splitlines()[0].lower() if reply.strip() else ""
    found = [
        (first.find(lab), lab) for lab in ("step missing", "calculation", "semantic", "none") if lab in first
    ]
    return min(found)[1] if found else None


def judge_error(
    question: str,
    response: str,
    gold: float | int | str,
    *,
    url: str | None = None,
    model: str = "default",
    api_key: str | None = None,
    timeout_s: float = 60.0,
) -> Verdict | None:
    """Ask an OpenAI-compatible chat endpoint to classify the error; None (skipped) when no endpoint is
    configured. `url` is the API base (".../v1") or the full ".../chat/completions"; without it, the
    LORALAB_JUDGE_URL environment variable; the key from `api_key` or LORALAB_JUDGE_API_KEY. A configured
    endpoint that fails raises LoralabError naming it."""
    base = url or os.environ.get(JUDGE_URL_ENV, "")
    if not base:
        return None
    endpoint = (
        base if base.rstrip("/").endswith("/chat/completions") else base.rstrip("/") + "/chat/completions"
    )
    body = {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": f"Problem:\n{question}\n\nCorrect answer: {gold}\n\nStudent solution:\n{response}",
            },
        ],
    }
    headers = {"Content-Type": "application/json"}
    key = api_key or os.environ.get(JUDGE_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            data = json.loads(reply.read().decode("utf-8"))
        content = str(data["choices"][0]["message"]["content"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LoralabError(f"LLM judge {endpoint}: {exc}") from exc
    return Verdict(_judge_label(content), content)
