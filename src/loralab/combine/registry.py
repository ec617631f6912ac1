"""The registry of combination methods: one plain dict, filled by explicit imports in `combine/__init__.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class MethodSpec:
    """A combination method.

    kind `merge`: `fn(deltas, **options) -> delta`, over the experts' dense delta weights (s_e B_e A_e) of one
    module; the result is added to the base weight. kind `router`: `fn(model, experts, **options)` replaces
    each adapted linear layer of `model` by a per-token routing module.
    """

    name: str
    kind: Literal["merge", "router"]
    description: str
    formula: str
    paper: str
    fn: Callable[..., Any]


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"combination method {spec.name!r} is registered twice")
    METHODS[spec.name] = spec
    return spec
