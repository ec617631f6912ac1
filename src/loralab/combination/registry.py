"""The registry of combination methods: one plain dict, filled by explicit imports in `combination/methods.py`.

A method's options are its function's keyword arguments: their names, types, defaults and allowed ranges are
read from the signature (a range is `typing.Annotated` metadata: `density: Annotated[float, FRACTION] = 0.2`),
so `loralab ls methods`, `--opt k=v` parsing, spec validation and the Python API cannot disagree. Every value
is checked when it is parsed, before any model is loaded.

Option syntax (`--opt`, spec files and Python alike): numbers and true/false as written; `none` for an option
whose default is None; a list option takes `a,b`, `[a,b]` or a single value (`weights=1`: one weight for
every expert).
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from loralab.errors import LoralabError, did_you_mean
from loralab.experts.config import SEED_LIMIT

Kind = Literal["merge", "router", "learned", "baseline"]
NOT_OPTIONS = {"experts", "model", "module", "tokenizer"}


@dataclass(frozen=True)
class MethodSpec:
    """A combination method.

    kind `merge`: `fn(experts, **options)` over one module's expert factors (a list of `Lora`), returning a
    `Lora` or a dense delta; applied to the base weights or exported as one PEFT adapter. kind `router`:
    `fn(model, experts, **options)` replaces each adapted linear layer of `model` by a per-token routing
    module. kind `learned`: `fn(model, experts, **options)` fits a few weights on target-task data and returns
    the merged factors per module (and what it learned). kind `baseline`: a comparison row (base, oracle).
    `space` says what the arithmetic runs on: `delta` (s B A), `factor` (A and B separately), `routed`
    (per-token outputs or factors) or `-`.
    """

    name: str
    kind: Kind
    space: str
    description: str
    formula: str
    paper: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class Range:
    """The values a numeric option (or each item of a list option) may take; numbers must also be finite."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self) -> str:
        low, high = _num(self.low), _num(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            if self.low == 0 and self.low_open:
                return "positive"
            return f"{'above' if self.low_open else 'at least'} {low}"
        if self.high is not None:
            return f"{'below' if self.high_open else 'at most'} {high}"
        return "finite"

    def admits(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))


def _num(value: float | None) -> str:
    """A bound as written: integers whole (4294967295, not 4.29497e+09), others short (0.0001)."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


FINITE = Range()
POSITIVE = Range(0, low_open=True)
AT_LEAST_1 = Range(1)
NOT_NEGATIVE = Range(0)
FRACTION = Range(0, 1, low_open=True)
# upper bounds too, so that a typo is one line, not a run of days or an overflow
SEED = Range(0, SEED_LIMIT - 1)
EPOCHS = Range(1, 1000)
LEARNING_RATE = Range(0, 10, low_open=True)
STEPS = Range(1, 10_000)
TEMPERATURE = Range(1e-4, 1e4)
"""The ranges the methods use (a method may declare its own `Range`)."""


@dataclass(frozen=True)
class Option:
    name: str
    type: Any
    default: Any
    range: Range | None = None

    @property
    def type_name(self) -> str:
        origin = typing.get_origin(self.type)
        if origin is Literal:
            return "|".join(map(str, typing.get_args(self.type)))
        name = str(self.type).replace("typing.", "").replace("<class '", "").replace("'>", "")
        return name + (f", {self.range}" if self.range is not None and self.range != FINITE else "")


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"combination method {spec.name!r} is registered twice")
    METHODS[spec.name] = spec
    return spec


def options(spec: MethodSpec) -> list[Option]:
    """The method's options (keyword arguments other than the experts/model), with types and defaults."""
    hints = typing.get_type_hints(spec.fn, include_extras=True)
    params = inspect.signature(spec.fn).parameters.values()
    out = [_option(p.name, hints.get(p.name, Any), p.default) for p in params if p.name not in NOT_OPTIONS]
    if spec.kind in ("merge", "learned"):
        out.append(Option("rank", int | None, None, AT_LEAST_1))
    return out


def _option(name: str, hint: Any, default: Any) -> Option:
    """An option from its annotation: `Annotated[T, Range(...)]` carries its range."""
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        found = [e for e in extras if isinstance(e, Range)]
        return Option(name, base, default, found[0] if found else None)
    return Option(name, hint, default)


def coerce_options(spec: MethodSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` (from --opt strings, spec files or Python values) checked against the method's options (names,
    types, ranges) and converted. Errors name the option: ``--opt KEY=VALUE: why``."""
    known = {o.name: o for o in options(spec)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        opt = known.get(key)
        if opt is None:
            takes = ", ".join(known) or "no options"
            raise LoralabError(f"--opt {key}: method {spec.name} takes {takes}{did_you_mean(key, known)}")
        out[key] = _convert(f"--opt {key}={_show(value)}", value, opt.type, opt.range)
    return out


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def _optional(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return inner[0], len(inner) < len(args)
    return tp, False


def _convert(flag: str, value: Any, tp: Any, rng: Range | None = None) -> Any:
    if tp is Any:
        return value
    tp, nullable = _optional(tp)
    if value is None or (nullable and isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if nullable:
            return None
        raise LoralabError(f"{flag}: a value is required")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if value not in args:
            raise LoralabError(
                f"{flag}: choose one of {', '.join(map(str, args))}{did_you_mean(value, args)}"
            )
        return value
    if origin is list:
        return [_convert(flag, v, args[0] if args else Any, rng) for v in _items(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false", "1", "0"):
            return str(value).lower() in ("true", "1")
        raise LoralabError(f"{flag}: expected true or false")
    if tp is str:
        return str(value)
    if tp in (int, float):
        return _number(flag, value, tp, rng)
    return value


def _items(value: Any) -> list[Any]:
    """A list option's items: `a,b`, `[a,b]`, a list or tuple, or one value."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        return [v.strip() for v in text.split(",")] if text.strip() else []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _number(flag: str, value: Any, tp: type, rng: Range | None) -> int | float:
    if isinstance(value, bool):
        raise LoralabError(f"{flag}: expected {tp.__name__}, not a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LoralabError(f"{flag}: expected {tp.__name__}") from None
    if not math.isfinite(number):
        raise LoralabError(f"{flag}: must be a finite number")
    if tp is int:
        if number != int(number):
            raise LoralabError(f"{flag}: expected int")
        number = int(number)
    if rng is not None and not rng.admits(number):
        raise LoralabError(f"{flag}: must be {rng}")
    return tp(number)
