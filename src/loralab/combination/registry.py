"""The registry of combination methods: one plain dict, filled by explicit imports in `combination/methods.py`.

A method's options are its function's keyword arguments: their names, types and defaults are read from the
signature, so `loralab ls methods`, `--opt k=v` parsing and the Python API cannot disagree.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from loralab.errors import LoralabError

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
class Option:
    name: str
    type: Any
    default: Any

    @property
    def type_name(self) -> str:
        origin = typing.get_origin(self.type)
        if origin is Literal:
            return "|".join(map(str, typing.get_args(self.type)))
        return str(self.type).replace("typing.", "").replace("<class '", "").replace("'>", "")


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"combination method {spec.name!r} is registered twice")
    METHODS[spec.name] = spec
    return spec


def options(spec: MethodSpec) -> list[Option]:
    """The method's options (keyword arguments other than the experts/model), with types and defaults."""
    hints = typing.get_type_hints(spec.fn)
    params = inspect.signature(spec.fn).parameters.values()
    out = [Option(p.name, hints.get(p.name, Any), p.default) for p in params if p.name not in NOT_OPTIONS]
    if spec.kind in ("merge", "learned"):
        out.append(Option("rank", int | None, None))
    return out


def coerce_options(spec: MethodSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` (from --opt strings or Python values) checked against the method's options and converted."""
    known = {o.name: o for o in options(spec)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        opt = known.get(key)
        if opt is None:
            takes = ", ".join(known) or "no options"
            raise LoralabError(f"--opt {key}: method {spec.name} takes {takes}")
        out[key] = _convert(f"--opt {key}={value}", value, opt.type)
    return out


def _convert(flag: str, value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if value is None or tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise LoralabError(f"{flag}: choose one of {', '.join(map(str, args))}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return _convert(flag, value, inner[0]) if len(inner) == 1 else value
    if origin is list:
        items = value.split(",") if isinstance(value, str) else list(value)
        return [
            _convert(flag, v.strip() if isinstance(v, str) else v, args[0] if args else Any) for v in items
        ]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false", "1", "0"):
            return str(value).lower() in ("true", "1")
        raise LoralabError(f"{flag}: expected true or false")
    if tp in (int, float, str):
        try:
            converted = tp(value)
        except (TypeError, ValueError):
            raise LoralabError(f"{flag}: expected {tp.__name__}") from None
        if tp is int and isinstance(value, float) and value != int(value):
            raise LoralabError(f"{flag}: expected int")
        return converted
    return value
