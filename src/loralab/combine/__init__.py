"""Combination methods (merges and routers) and `combine`, which applies one to a base model."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from loralab.combine.arrow import ARROW, ArrowLinear
from loralab.combine.merges import UNIFORM
from loralab.combine.registry import METHODS, MethodSpec, register
from loralab.errors import LoralabError
from loralab.experts.library import Expert, check_compatible, load_expert

for _spec in (UNIFORM, ARROW):
    register(_spec)

__all__ = ["METHODS", "ArrowLinear", "MethodSpec", "combine", "method_options"]


def method_options(spec: MethodSpec) -> dict[str, Any]:
    """The method's keyword options and their defaults."""
    skip = {"deltas", "model", "experts"}
    params = inspect.signature(spec.fn).parameters.values()
    return {p.name: p.default for p in params if p.name not in skip}


def combine(base: Any, experts: Sequence[Path | str | Expert], method: str, **options: Any) -> Any:
    """The base model with `experts` combined by `method`; ready for evaluation and `generate`.

    `base` is a preset name, a model folder, a loaded model, or a (model, tokenizer) pair (loaded models are
    changed in place). Merges add the merged delta to each adapted weight; routers replace each adapted
    linear layer by a routing module.
    """
    from loralab.models.load import load_base

    spec = METHODS.get(method)
    if spec is None:
        raise LoralabError(f"--method {method}: unknown; choose one of {', '.join(sorted(METHODS))}")
    allowed = method_options(spec)
    for key in options:
        if key not in allowed:
            takes = ", ".join(allowed) or "no options"
            raise LoralabError(f"--opt {key}: method {method} takes {takes}")
    model = base if isinstance(base, torch.nn.Module) else load_base(base)[0]
    loaded = [e if isinstance(e, Expert) else load_expert(e) for e in experts]
    check_compatible(loaded, model)
    if spec.kind == "router":
        return spec.fn(model, loaded, **options)
    with torch.no_grad():
        for module in loaded[0].modules:
            layer = model.get_submodule(module)
            merged = spec.fn([e.delta(module) for e in loaded], **options)
            layer.weight += merged.to(layer.weight.device, layer.weight.dtype)
    return model
