"""A small, safe evaluator for the expressions of GSM-Symbolic templates (no `eval`).

An expression is parsed with `ast` and every node is checked against a whitelist, then compiled once into a
tree of Python closures that template instantiation calls many times. Allowed: numbers, strings, lists,
tuples, names, arithmetic (`+ - * / // % **`), comparisons (chains too), `and`/`or`/`not`, `x if c else y`,
indexing and slicing, and calls of the functions in `FUNCTIONS` (by plain name, or `np.arange` /
`np.random.randint`). Everything else (attributes, comprehensions, lambdas, keyword arguments, ...) is
rejected when the expression is compiled.

Values follow Python's own rules (`/` gives a float, `Fraction` stays exact), except that a `Worded` value
(a vocabulary entry such as "twice" = 2) takes part in arithmetic, comparisons and function calls as its
number. Sizes are bounded: a list or string longer than `MAX_LENGTH`, or an integer power with a huge result,
is an `EvalError`, as are the data-dependent failures of one sample (division by zero, ...).
"""

from __future__ import annotations

import ast
import math
import operator
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from loralab.errors import LoralabError
from loralab.gsm.vocab import Number, Worded, number_words

MAX_LENGTH = 100_000
"""The longest list, range or string an expression may build."""
_MAX_POWER_BITS = 4096
_TOLERANCE = 1e-9

Env = Mapping[str, Any]
Functions = Mapping[str, Callable[..., Any]]
_Code = Callable[[Env, Functions], Any]


class ExprError(LoralabError):
    """An expression that is not allowed or cannot be parsed; the message names where it came from."""


class EvalError(Exception):
    """A failure of one evaluation that depends on the sampled values (too large a list, a bad argument)."""


def plain(x: Any) -> Any:
    """The number behind a `Worded` value; anything else unchanged."""
    return x.value if isinstance(x, Worded) else x


def is_number(x: Any) -> bool:
    x = plain(x)
    return isinstance(x, int | float | Fraction) and not isinstance(x, bool)


# ----------------------------------------------------------------------------------------------------------
# The functions a template may call


def is_int(x: Any) -> bool:
    """Whether `x` is a whole number (floats within 1e-9 of one count: 0.1 * 30 is 3)."""
    x = plain(x)
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    if isinstance(x, Fraction):
        return x.denominator == 1
    if isinstance(x, float):
        return math.isfinite(x) and abs(x - round(x)) <= _TOLERANCE * max(1.0, abs(x))
    return False


def divides(a: Any, b: Any) -> bool:
    """Whether `a` is a whole multiple of `b` (`divides(12, 4)` is True); False when b is 0."""
    a, b = plain(a), plain(b)
    if b == 0:
        return False
    if isinstance(a, int | Fraction) and isinstance(b, int | Fraction):
        return (Fraction(a) / Fraction(b)).denominator == 1
    return is_int(a / b)


def _check_length(n: int) -> int:
    if n > MAX_LENGTH:
        raise EvalError(f"a sequence of {n} items is longer than the limit of {MAX_LENGTH}")
    return n


def _range(*args: Any) -> range:
    out = range(*args)
    _check_length(len(out))
    return out


def _list(items: Iterable[Any] = ()) -> list[Any]:
    if isinstance(items, Sequence):
        _check_length(len(items))
    return list(items)


def frange(start: Number, stop: Number, step: Number = 1) -> list[float]:
    """Floats from `start` up to (not including) `stop` by `step`, each rounded to 10 decimals."""
    if step == 0:
        raise EvalError("frange: step is 0")
    count = max(0, math.ceil((stop - start) / step - _TOLERANCE))
    _check_length(count)
    return [round(float(start + i * step), 10) for i in range(count)]


def fix_floats(values: Iterable[Any]) -> list[Worded]:
    """Amounts of money: each rounded to cents and shown with two decimals (12.5 -> "12.50")."""
    out = []
    for v in values:
        cents = round(float(plain(v)), 2)
        out.append(Worded(f"{cents:.2f}", cents))
    return out


def numbers_within(low: int, high: int) -> list[Worded]:
    """The whole numbers low..high (both included), shown as words ("two", "three", ...)."""
    _check_length(high - low + 1)
    return [Worded(number_words(n), n) for n in range(low, high + 1)]


def format_frac(x: Any) -> str:
    """A quantity as a whole number and a fraction: 11/2 -> "5 1/2", 1/3 -> "1/3", 4 -> "4"."""
    value = Fraction(plain(x)).limit_denominator(1000)
    whole, rest = divmod(abs(value), 1)
    sign = "-" if value < 0 else ""
    if rest == 0:
        return f"{sign}{whole}"
    if whole == 0:
        return f"{sign}{rest}"
    return f"{sign}{whole} {rest}"


def _fraction(a: Any, b: Any = None) -> Fraction:
    return Fraction(a) if b is None else Fraction(a, b)


def _round(x: Any, digits: int | None = None) -> Any:
    return round(x) if digits is None else round(x, digits)


def _as_value(item: Any) -> Any:
    """A vocabulary pair ("six-sided", 6) or (20, 20) sampled from a list becomes a `Worded` value."""
    if isinstance(item, tuple) and len(item) == 2 and is_number(item[1]) and not isinstance(item[1], Worded):
        return Worded(str(item[0]), item[1])
    return item


def _randomised(rng: random.Random) -> dict[str, Callable[..., Any]]:
    """The functions that draw, bound to one random generator."""

    def sample(items: Any, k: int | None = None) -> Any:
        """One item of `items`, or a list of `k` distinct ones."""
        if not isinstance(items, Sequence) or isinstance(items, str) or len(items) == 0:
            raise EvalError("sample: needs a non-empty list or range")
        if k is None:
            return _as_value(rng.choice(items))
        if not 0 <= k <= len(items):
            raise EvalError(f"sample: cannot draw {k} distinct items from {len(items)}")
        return [_as_value(x) for x in rng.sample(list(items), k)]

    def sample_sequential(items: Sequence[Any], k: int) -> list[Any]:
        """`k` consecutive items of `items` (three weekdays in a row), starting at a random one."""
        if not 0 < k <= len(items):
            raise EvalError(f"sample_sequential: cannot take {k} consecutive items from {len(items)}")
        start = rng.randrange(len(items) - k + 1)
        return [_as_value(x) for x in items[start : start + k]]

    def shuffle_list(items: Sequence[Any]) -> list[Any]:
        out = list(items)
        rng.shuffle(out)
        return out

    def randint(low: int, high: int, size: int = 1) -> list[int]:
        """numpy's `randint(low, high, size)`: `size` draws from low..high-1."""
        return [rng.randrange(low, high) for _ in range(_check_length(size))]

    return {
        "sample": sample,
        "sample_sequential": sample_sequential,
        "shuffle_list": shuffle_list,
        "np.random.randint": randint,
    }


_PURE: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "len": len,
    "list": _list,
    "range": _range,
    "is_int": is_int,
    "divides": divides,
    "Fraction": _fraction,
    "frange": frange,
    "np.arange": frange,
    "fix_floats": fix_floats,
    "format_frac": format_frac,
    "numbers_within": numbers_within,
}

_RANDOMISED = frozenset(_randomised(random.Random(0)))
FUNCTIONS: frozenset[str] = frozenset([*_PURE, *_RANDOMISED])
"""Every function name an expression may call."""


def functions(rng: random.Random) -> dict[str, Callable[..., Any]]:
    """The callable functions, the drawing ones bound to `rng`."""
    return {**_PURE, **_randomised(rng)}


# ----------------------------------------------------------------------------------------------------------
# Operators


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, str | list | tuple) and isinstance(n, int):
            _check_length(len(seq) * max(n, 0))
    return a * b


def _pow(a: Any, b: Any) -> Any:
    if isinstance(b, int) and isinstance(a, int | Fraction) and abs(b) > 1:
        size = abs(a) if isinstance(a, int) else max(abs(a.numerator), a.denominator)
        if size > 1 and abs(b) * math.log2(size) > _MAX_POWER_BITS:
            raise EvalError(f"{a} ** {b} is too large")
    return a**b


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _plain_items(x: Any) -> Any:
    """For `in`: a list of `Worded` values compares by their numbers."""
    return [plain(v) for v in x] if isinstance(x, list | tuple) else x


# ----------------------------------------------------------------------------------------------------------
# Compilation


@dataclass(frozen=True)
class Expr:
    """A compiled expression: call it with the variables (and the functions) to get its value."""

    source: str
    names: frozenset[str]
    """The variables it reads (not the functions it calls)."""
    calls: frozenset[str]
    tree: ast.expr
    _code: _Code

    def __call__(self, env: Env, funcs: Functions = _PURE) -> Any:
        return self._code(env, funcs)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _is_constant(node: ast.expr) -> bool:
    """No variables and no drawing: the same value every time."""
    callees = {id(n) for c in ast.walk(node) if isinstance(c, ast.Call) for n in ast.walk(c.func)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _dotted(sub.func) in _RANDOMISED:
            return False
        if isinstance(sub, ast.Name) and id(sub) not in callees:
            return False
    return True


class _Compiler:
    def __init__(self, where: str, source: str) -> None:
        self.where, self.source = where, source
        self.names: set[str] = set()
        self.calls: set[str] = set()

    def fail(self, why: str) -> ExprError:
        return ExprError(f"{self.where}: {why} in {self.source.strip()!r}")

    def compile(self, node: ast.expr) -> _Code:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"unsupported syntax ({type(node).__name__})")
        code: _Code = method(node)
        if not isinstance(node, ast.Constant) and _is_constant(node):
            try:  # fold a constant part such as list(np.arange(0.25, 5, 0.25)) once, here
                value = code({}, _PURE)
            except Exception:  # it fails again, with its reason, when evaluated
                return code
            return lambda env, funcs: value
        return code

    def _Constant(self, node: ast.Constant) -> _Code:
        value = node.value
        if not isinstance(value, int | float | str):  # bool is an int
            raise self.fail(f"unsupported constant {value!r}")
        return lambda env, funcs: value

    def _Name(self, node: ast.Name) -> _Code:
        name = node.id
        self.names.add(name)

        def load(env: Env, funcs: Functions) -> Any:
            try:
                return env[name]
            except KeyError:
                raise EvalError(f"unknown name {name!r}") from None

        return load

    def _BinOp(self, node: ast.BinOp) -> _Code:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.fail(f"unsupported operator {type(node.op).__name__}")
        left, right = self.compile(node.left), self.compile(node.right)
        return lambda env, funcs: op(plain(left(env, funcs)), plain(right(env, funcs)))

    def _UnaryOp(self, node: ast.UnaryOp) -> _Code:
        op = _UNARY.get(type(node.op))
        if op is None:
            raise self.fail(f"unsupported operator {type(node.op).__name__}")
        operand = self.compile(node.operand)
        return lambda env, funcs: op(plain(operand(env, funcs)))

    def _BoolOp(self, node: ast.BoolOp) -> _Code:
        parts = [self.compile(v) for v in node.values]
        is_and = isinstance(node.op, ast.And)

        def run(env: Env, funcs: Functions) -> Any:
            value: Any = None
            for part in parts:
                value = part(env, funcs)
                if bool(plain(value)) != is_and:
                    return value
            return value

        return run

    def _Compare(self, node: ast.Compare) -> _Code:
        ops = []
        for op in node.ops:
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise self.fail(f"unsupported comparison {type(op).__name__}")
            ops.append(fn)
        first = self.compile(node.left)
        rest = [self.compile(c) for c in node.comparators]

        def run(env: Env, funcs: Functions) -> bool:
            left = plain(first(env, funcs))
            for fn, part in zip(ops, rest, strict=True):
                right = plain(part(env, funcs))
                if not fn(left, _plain_items(right)):
                    return False
                left = right
            return True

        return run

    def _IfExp(self, node: ast.IfExp) -> _Code:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env, funcs: body(env, funcs) if plain(test(env, funcs)) else orelse(env, funcs)

    def _Call(self, node: ast.Call) -> _Code:
        name = _dotted(node.func)
        if name is None or name not in FUNCTIONS:
            raise self.fail(f"unknown function {name or ast.unparse(node.func)!r}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"{name}() takes positional arguments only")
        self.calls.add(name)
        args = [self.compile(a) for a in node.args]

        def call(env: Env, funcs: Functions) -> Any:
            return funcs[name](*[plain(a(env, funcs)) for a in args])

        return call

    def _List(self, node: ast.List) -> _Code:
        items = [self.compile(e) for e in node.elts]
        return lambda env, funcs: [e(env, funcs) for e in items]

    def _Tuple(self, node: ast.Tuple) -> _Code:
        items = [self.compile(e) for e in node.elts]
        return lambda env, funcs: tuple(e(env, funcs) for e in items)

    def _Subscript(self, node: ast.Subscript) -> _Code:
        value = self.compile(node.value)
        index = self._slice(node.slice) if isinstance(node.slice, ast.Slice) else self.compile(node.slice)

        def run(env: Env, funcs: Functions) -> Any:
            seq, i = value(env, funcs), plain(index(env, funcs))
            return seq[i]  # Worded's [0] is its text, [1] its number

        return run

    def _slice(self, node: ast.Slice) -> _Code:
        parts = [None if p is None else self.compile(p) for p in (node.lower, node.upper, node.step)]
        return lambda env, funcs: slice(*(None if p is None else plain(p(env, funcs)) for p in parts))


def compile_expr(source: str, where: str) -> Expr:
    """Parse and check `source`; `where` ("p1/0003.json #conditions line 2") prefixes any error message."""
    text = source.strip()
    if not text:
        raise ExprError(f"{where}: empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"{where}: cannot parse {text!r} ({exc.msg})") from None
    compiler = _Compiler(where, text)
    code = compiler.compile(tree.body)
    return Expr(text, frozenset(compiler.names), frozenset(compiler.calls), tree.body, code)


def evaluate(source: str, env: Env | None = None, rng: random.Random | None = None) -> Any:
    """Compile and evaluate `source` once (tests, one-off checks); `rng` serves `sample` and friends."""
    return compile_expr(source, "expression")(env or {}, functions(rng or random.Random(0)))
