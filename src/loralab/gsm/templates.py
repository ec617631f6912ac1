"""GSM-Symbolic templates: parse the annotated format, instantiate it by seeded rejection sampling, render.

A template is a JSON object whose `question_annotated` holds the question with `{var,default}` placeholders
followed by three sections, and whose `answer_annotated` holds the worked solution with `{expression}`
placeholders, ending `#### {expression}`:

    {name,Ada} has {a,3} apples and buys {b,4} more. How many apples does {name,Ada} have?

    #init:
    - name = sample(names)
    - $a = range(2, 10)
    - $b = range(2, 10)

    #conditions:
    - a + b < 15

    #answer: a + b

`#init` lines assign variables in order (`$` marks a numeric one); a range or list assigned to one name
draws one of its items, `x, y = sample(names, 2)` draws two distinct ones. `#conditions` must all hold;
a sample that breaks one is thrown away and drawn again (each condition is checked as soon as its
variables are set), up to `max_tries` times. An instance is kept only if the number after `####` in its
rendered solution equals the value of `#answer`.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError
from loralab.gsm.expr import EvalError, Expr, compile_expr, functions, is_int, is_number, plain
from loralab.gsm.vocab import VOCABULARIES, Number, Worded, number_words

LEVELS = ("symbolic", "p1", "p2")
"""GSM-Symbolic's difficulty levels: the base questions, one added clause (P1), two added clauses (P2)."""
DEFAULT_TRIES = 100_000
MAX_MISMATCHES = 1000
"""`instantiate` gives up after this many draws that met the conditions but failed the answer check."""
_DATA_ERRORS = (ArithmeticError, ValueError, TypeError, IndexError, KeyError, EvalError)

_SECTION = re.compile(r"^[ \t]*#[ \t]*(init|conditions|answer)\b[ \t]*[:=]?", re.MULTILINE | re.IGNORECASE)
_ASSIGN = re.compile(r"^(\$?\s*[A-Za-z_]\w*(?:\s*,\s*\$?\s*[A-Za-z_]\w*)*)\s*=(?!=)\s*(.+)$", re.DOTALL)
_VAR_DEFAULT = re.compile(r"^\s*\$?([A-Za-z_]\w*)\s*,(.*)$", re.DOTALL)
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_FINAL = "####"


@dataclass(frozen=True)
class Placeholder:
    """`{var,default}` or `{expression}` in a question or solution."""

    expr: Expr
    default: str | None = None


Segment = str | Placeholder


@dataclass(frozen=True)
class Init:
    names: tuple[str, ...]
    numeric: bool
    expr: Expr


@dataclass(frozen=True)
class Template:
    """A parsed template; `source` (its file) names it in every error message."""

    source: str
    level: str
    number: int
    family: str
    question: tuple[Segment, ...]
    solution: tuple[Segment, ...]
    """`answer_annotated` up to `####`."""
    final: tuple[Segment, ...]
    """What follows `####`: the final answer."""
    inits: tuple[Init, ...]
    conditions: tuple[Expr, ...]
    answer: Expr
    checks: tuple[tuple[Expr, ...], ...]
    """`checks[i]`: the conditions whose variables are all set once `inits[i]` has run."""
    data: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.level}/{self.number:04d}"

    @property
    def variables(self) -> list[str]:
        """The #init variables in order of first assignment."""
        return list(dict.fromkeys(n for init in self.inits for n in init.names))


@dataclass(frozen=True)
class Instance:
    """One sampled problem: the drawn values, the question, the worked solution and the answer."""

    template: Template
    seed: int | str
    values: dict[str, Any]
    question: str
    solution: str
    """The rendered `answer_annotated`, calculator annotations `<<...>>` removed; ends `#### N`."""
    answer: Number
    tries: int

    @property
    def gold(self) -> str:
        """The answer as the text a grader compares with: "42", "32.5"."""
        return format_number(self.answer, fractions="decimal")


# ----------------------------------------------------------------------------------------------------------
# Rendering


def format_number(x: Any, fractions: str = "ratio") -> str:
    """How a value shows in text: whole numbers without a decimal point (16.0 -> "16"), other floats
    without float noise (37.440000000000005 -> "37.44"), fractions as "2/5" (or as decimals with
    `fractions="decimal"`), `Worded` values as their words."""
    if isinstance(x, Worded):
        return x.text
    if isinstance(x, bool) or not isinstance(x, int | float | Fraction):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, Fraction):
        if x.denominator == 1:
            return str(x.numerator)
        if fractions == "ratio":
            return f"{x.numerator}/{x.denominator}"
        x = float(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)):
        return str(round(x))
    return repr(round(x, 9))


def parse_number(text: str) -> float | None:
    """The number in a final-answer text such as "$1,250", "32.50", "-3", "45%" (None if there is none)."""
    cleaned = text.strip().replace(",", "").lstrip("$€£").rstrip("%.").strip()
    try:
        return float(Fraction(cleaned))
    except (ValueError, ZeroDivisionError):
        return None


def same_number(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _render(
    segments: Sequence[Segment], env: Mapping[str, Any], funcs: Any, words: bool, fractions: str
) -> str:
    """Fill the placeholders. `words`: a `Worded` value shows as its words (in questions: "twice",
    "a third"), else as its number (in solutions: "2", "1/3"), as GSM-Symbolic's released instances do."""
    parts = []
    for seg in segments:
        if isinstance(seg, str):
            parts.append(seg)
            continue
        value = seg.expr(env, funcs)
        parts.append(format_number(value if words else plain(value), fractions))
    return "".join(parts)


def render_defaults(template: Template) -> str:
    """The question with each placeholder's default text: the original question the template came from."""
    parts = []
    for seg in template.question:
        if isinstance(seg, str):
            parts.append(seg)
        elif seg.default is None:
            raise LoralabError(f"{template.source}: placeholder {{{seg.expr.source}}} has no default")
        else:
            parts.append(seg.default.strip())
    return "".join(parts)


# ----------------------------------------------------------------------------------------------------------
# Parsing


def _segments(text: str, where: str, known: set[str]) -> tuple[Segment, ...]:
    """Split `text` into literal strings and placeholders; braces must pair up and not nest."""
    out: list[Segment] = []
    pos = 0
    while True:
        opening, closing = text.find("{", pos), text.find("}", pos)
        if closing != -1 and (opening == -1 or closing < opening):
            raise LoralabError(f"{where} line {text.count(chr(10), 0, closing) + 1}: unbalanced '}}'")
        if opening == -1:
            out.append(text[pos:])
            break
        line = text.count("\n", 0, opening) + 1
        end = text.find("}", opening + 1)
        inner_open = text.find("{", opening + 1)
        if end == -1:
            raise LoralabError(f"{where} line {line}: unbalanced '{{' (no closing '}}')")
        if inner_open != -1 and inner_open < end:
            raise LoralabError(f"{where} line {line}: '{{' inside a placeholder")
        out.append(text[pos:opening])
        inner = text[opening + 1 : end]
        match = _VAR_DEFAULT.match(inner)
        here = f"{where} line {line}"
        if match:
            expr, default = compile_expr(match.group(1), here), match.group(2)
        else:
            expr, default = compile_expr(_strip_dollars(inner), here), None
        _check_names(expr, known, here)
        out.append(Placeholder(expr, default))
        pos = end + 1
    return tuple(s for s in out if s != "")


def _strip_dollars(expr: str) -> str:
    return re.sub(r"\$\s*(?=[A-Za-z_])", "", expr)


def _check_names(expr: Expr, known: set[str] | Mapping[str, Any], where: str) -> None:
    unknown = sorted(n for n in expr.names if n not in known and n not in VOCABULARIES)
    if unknown:
        raise LoralabError(f"{where}: unknown name {unknown[0]!r} in {expr.source!r}")


def _section_lines(body: str, first: int, where: str) -> list[tuple[int, str]]:
    """The `- item` lines of an #init or #conditions section (whose header is on line `first` of
    question_annotated), with their line numbers."""
    out = []
    for offset, line in enumerate(body.splitlines()):
        text = line.strip()
        if not text:
            continue
        if not text.startswith("-"):
            raise LoralabError(f"{where} line {first + offset}: expected '- ...', got {text!r}")
        out.append((first + offset, text[1:].strip()))
    return out


def _sections(annotated: str, where: str) -> tuple[str, dict[str, tuple[int, str]]]:
    """The question text and each section's (first line number, body)."""
    matches = list(_SECTION.finditer(annotated))
    if not matches:
        raise LoralabError(f"{where}: question_annotated has no #init/#conditions/#answer sections")
    sections: dict[str, tuple[int, str]] = {}
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        name = m.group(1).lower()
        if name in sections:
            raise LoralabError(f"{where}: more than one #{name} section")
        end = nxt.start() if nxt else len(annotated)
        sections[name] = (annotated.count("\n", 0, m.start()) + 1, annotated[m.end() : end])
    if "answer" not in sections:
        raise LoralabError(f"{where}: question_annotated has no #answer section")
    return annotated[: matches[0].start()].rstrip(), sections


def _parse_inits(body: str, first: int, where: str) -> list[Init]:
    inits: list[Init] = []
    defined: set[str] = set()
    for line, text in _section_lines(body, first, f"{where} #init"):
        here = f"{where} #init line {line}"
        match = _ASSIGN.match(text)
        if not match:
            raise LoralabError(f"{here}: expected 'name = expression', got {text!r}")
        lhs, rhs = match.groups()
        names = tuple(n.strip().lstrip("$").strip() for n in lhs.split(","))
        expr = compile_expr(rhs, here)
        _check_names(expr, defined, here)
        inits.append(Init(names, lhs.lstrip().startswith("$"), expr))
        defined.update(names)
    return inits


def parse_template(data: Mapping[str, Any], source: str, level: str = "symbolic") -> Template:
    """A `Template` from one GSM-Symbolic JSON object; any problem is a one-line `LoralabError`."""
    for key in ("question_annotated", "answer_annotated"):
        if not isinstance(data.get(key), str):
            raise LoralabError(f"{source}: missing text field {key!r}")
    number = data.get("id_shuffled", 0)
    if not isinstance(number, int):
        raise LoralabError(f"{source}: id_shuffled must be an integer")
    question_text, sections = _sections(data["question_annotated"], source)
    first, body = sections.get("init", (0, ""))
    inits = _parse_inits(body, first, source)
    known = {n for init in inits for n in init.names}
    conditions = []
    if "conditions" in sections:
        first, body = sections["conditions"]
        for line, text in _section_lines(body, first, f"{source} #conditions"):
            here = f"{source} #conditions line {line}"
            expr = compile_expr(text, here)
            _check_names(expr, known, here)
            conditions.append(expr)
    answer_line, answer_body = sections["answer"]
    answer_src = _strip_dollars(answer_body.strip())
    if answer_src.startswith("{") and answer_src.endswith("}"):
        answer_src = answer_src[1:-1]
    answer = compile_expr(answer_src, f"{source} #answer line {answer_line}")
    _check_names(answer, known, f"{source} #answer")
    question = _segments(question_text, f"{source} question_annotated", known)
    solution_text = data["answer_annotated"]
    cut = solution_text.rfind(_FINAL)
    if cut == -1:
        raise LoralabError(f"{source}: answer_annotated has no final '#### {{answer}}' line")
    solution = _segments(solution_text[:cut], f"{source} answer_annotated", known)
    final = _segments(solution_text[cut + len(_FINAL) :], f"{source} answer_annotated (final line)", known)
    family = data.get("family") or f"gsm{number:04d}"
    return Template(
        source=source,
        level=level,
        number=number,
        family=str(family),
        question=question,
        solution=solution,
        final=final,
        inits=tuple(inits),
        conditions=tuple(conditions),
        answer=answer,
        checks=_schedule(inits, conditions),
        data=dict(data),
    )


def _schedule(inits: Sequence[Init], conditions: Sequence[Expr]) -> tuple[tuple[Expr, ...], ...]:
    """Check each condition right after the last #init line that sets one of its variables."""
    last = {n: i for i, init in enumerate(inits) for n in init.names}
    checks: list[list[Expr]] = [[] for _ in inits] or [[]]
    for cond in conditions:
        at = max((last[n] for n in cond.names if n in last), default=0)
        checks[at].append(cond)
    return tuple(tuple(c) for c in checks)


def load_template(path: Path | str, level: str | None = None) -> Template:
    """Read and parse one template file; the level defaults to its folder's name (symbolic/p1/p2)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoralabError(f"{path}: template file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoralabError(f"{path}: not a JSON template ({exc})") from None
    if not isinstance(data, dict):
        raise LoralabError(f"{path}: a template must be a JSON object")
    if level is None:
        level = path.parent.name if path.parent.name in LEVELS else "symbolic"
    if "id_shuffled" not in data and path.stem.isdigit():
        data["id_shuffled"] = int(path.stem)
    return parse_template(data, str(path), level)


def load_templates(root: Path | str) -> dict[str, list[Template]]:
    """Every `ROOT/LEVEL/*.json` template, by level (levels without a folder are left out)."""
    root = Path(root)
    if not root.is_dir():
        raise LoralabError(f"{root}: template folder not found")
    out = {
        level: [load_template(p, level) for p in sorted((root / level).glob("*.json"))]
        for level in LEVELS
        if (root / level).is_dir()
    }
    if not any(out.values()):
        raise LoralabError(f"{root}: no templates in {', '.join(f'{lv}/' for lv in LEVELS)}")
    return out


# ----------------------------------------------------------------------------------------------------------
# Instantiation


def _assign(init: Init, value: Any, env: dict[str, Any], rng: random.Random, where: str) -> None:
    if len(init.names) == 1:
        if isinstance(value, range | list):
            if len(value) == 0:
                raise EvalError("an empty range or list")
            value = value[rng.randrange(len(value))]
        if isinstance(value, tuple) and len(value) == 2 and is_number(value[1]):
            value = Worded(str(value[0]), value[1])
        values = [value]
    else:
        if not isinstance(value, list | tuple) or len(value) != len(init.names):
            raise LoralabError(f"{where}: {len(init.names)} names but the value is {value!r}")
        values = list(value)
    for name, v in zip(init.names, values, strict=True):
        if init.numeric and not is_number(v):
            raise LoralabError(f"{where}: ${name} is numeric but drew {v!r}")
        env[name] = v


def _check(cond: Expr, env: Mapping[str, Any], funcs: Any) -> str | None:
    """Why `cond` rules these values out, or None when it holds."""
    try:
        if plain(cond(env, funcs)):
            return None
    except _DATA_ERRORS as exc:
        return f"condition {cond.source!r}: {type(exc).__name__}: {exc}"
    return f"condition {cond.source!r} is false"


def _draw(template: Template, rng: random.Random, funcs: Any) -> dict[str, Any] | str:
    """The values of one draw that meet every condition, or why the draw was thrown away."""
    env: dict[str, Any] = dict(VOCABULARIES)
    if not template.inits:
        failed = next(filter(None, (_check(c, env, funcs) for c in template.checks[0])), None)
        return failed or env
    for init, checks in zip(template.inits, template.checks, strict=True):
        where = f"{template.source} #init {', '.join(init.names)}"
        try:
            _assign(init, init.expr(env, funcs), env, rng, where)
        except _DATA_ERRORS as exc:
            return f"#init {', '.join(init.names)}: {type(exc).__name__}: {exc}"
        for cond in checks:
            failed = _check(cond, env, funcs)
            if failed:
                return failed
    return env


class _Mismatch(str):
    """A reason for rejecting values that met the conditions: the answer check failed."""


class NoInstance(LoralabError):
    """`instantiate` found no instance; `mismatches` counts draws that met the conditions but whose solution
    disagreed with `#answer` (a flaw of the template, not bad luck)."""

    def __init__(self, message: str, mismatches: int) -> None:
        super().__init__(message)
        self.mismatches = mismatches


def _complete(
    template: Template, env: dict[str, Any], funcs: Any, seed: int | str, tries: int, check_answer: bool
) -> Instance | str:
    """Render the instance of values that meet the conditions, or say why its answer does not check."""
    try:
        answer = plain(template.answer(env, funcs))
        final = _render(template.final, env, funcs, False, "decimal").strip()
    except _DATA_ERRORS as exc:
        return f"#answer failed ({type(exc).__name__}: {exc})"
    if not is_number(answer):
        return _Mismatch(f"#answer is not a number ({answer!r})")
    shown = parse_number(final)
    if shown is None:
        return _Mismatch(f"the solution's final answer {final!r} is not a number")
    if not check_answer:
        answer = round(shown) if is_int(shown) else shown
    elif not same_number(shown, float(answer)):
        return _Mismatch(f"the solution's final answer {final} differs from #answer {format_number(answer)}")
    try:
        question = _render(template.question, env, funcs, True, "ratio")
        solution = _render(template.solution, env, funcs, False, "ratio")
    except _DATA_ERRORS as exc:
        return f"rendering failed ({type(exc).__name__}: {exc})"
    values = {name: env[name] for name in template.variables if name in env}
    text = _CALCULATOR.sub("", solution) + _FINAL + " " + format_number(answer, "decimal")
    return Instance(template, seed, values, question, text, answer, tries)


def instantiate(
    template: Template, seed: int | str = 0, max_tries: int = DEFAULT_TRIES, check_answer: bool = True
) -> Instance:
    """One instance drawn with `random.Random(seed)`: draw until the conditions hold and the rendered final
    answer equals `#answer`; after `max_tries` failed draws (or `MAX_MISMATCHES` draws whose answer did not
    check, and none that did), a `NoInstance` error saying why.

    `check_answer=False` skips the last check and takes the number on the solution's `####` line as the
    answer (for measuring templates whose `#answer` disagrees with their own solution)."""
    if max_tries < 1:
        raise LoralabError(f"max_tries must be at least 1, got {max_tries}")
    rng = random.Random(seed)
    funcs = functions(rng)
    tries = 0
    rejected: Counter[str] = Counter()
    mismatch: list[str] = []
    for tries in range(1, max_tries + 1):
        env = _draw(template, rng, funcs)
        outcome = env if isinstance(env, str) else _complete(template, env, funcs, seed, tries, check_answer)
        if isinstance(outcome, Instance):
            return outcome
        if isinstance(outcome, _Mismatch):
            mismatch.append(outcome)
            if len(mismatch) == MAX_MISMATCHES:
                break
        else:
            rejected[outcome] += 1
    if mismatch:
        why = f"{len(mismatch)} draws met the conditions but {mismatch[0]}"
    else:
        (reason, count), *_ = rejected.most_common(1)
        why = f"no draw met the conditions; most often ({count} times) {reason}"
    raise NoInstance(f"{template.source}: no instance in {tries} tries (seed {seed!r}): {why}", len(mismatch))


def instance_from_values(template: Template, values: Mapping[str, Any]) -> Instance:
    """The instance with these variable values (no drawing): every condition must hold and the answer check."""
    env: dict[str, Any] = {**VOCABULARIES, **values}
    missing = [n for n in template.variables if n not in env]
    if missing:
        raise LoralabError(f"{template.source}: no value for {', '.join(missing)}")
    funcs = functions(random.Random(0))
    failed = next(filter(None, (_check(c, env, funcs) for c in template.conditions)), None)
    outcome = failed or _complete(template, env, funcs, "given", 0, True)
    if isinstance(outcome, str):
        raise LoralabError(f"{template.source}: these values do not make an instance: {outcome}")
    return outcome


def default_values(template: Template) -> dict[str, Any]:
    """The values that the question's `{var,default}` texts stand for: "3" -> 3, "twice" -> the vocabulary's
    `Worded` "twice", "four" -> `Worded("four", 4)`, other text as it is: the original question's values."""
    worded = {number_words(n): Worded(number_words(n), n) for n in range(1000)}
    worded.update({w.text: w for vocab in VOCABULARIES.values() for w in vocab if isinstance(w, Worded)})
    out: dict[str, Any] = {}
    for seg in template.question:
        if not isinstance(seg, Placeholder) or seg.default is None:
            continue
        text = seg.default.strip()
        number = parse_number(text) if text[:1].isdigit() else None
        value: Any = worded.get(text, text if number is None else number)
        if isinstance(value, float) and value.is_integer() and "." not in text:
            value = int(value)
        out.setdefault(seg.expr.source, value)
    return out
