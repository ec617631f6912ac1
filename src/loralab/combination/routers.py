"""Routers without learned routing, and the comparison rows: mu-routing, a single (oracle) expert, the base."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from loralab.combination.routed import FixedRouter, Mix, RoutedLinear, stack_experts
from loralab.errors import LoralabError
from loralab.experts.library import Expert


def install_routed(
    model: Any, experts: list[Expert], router: Callable[[str], nn.Module], mix: Mix, method: str
) -> Any:
    """Replace every adapted linear layer by a `RoutedLinear` whose router is `router(module name)`."""
    for module in experts[0].modules:
        parent_name, _, child = module.rpartition(".")
        parent = model.get_submodule(parent_name)
        base = getattr(parent, child)
        A, B = stack_experts([(e.A[module], e.B[module]) for e in experts], mix == "params", method)
        scaling = torch.tensor([e.scaling for e in experts])
        setattr(parent, child, RoutedLinear(base, A, B, scaling, router(module), mix).to(base.weight.device))
    return model


def uniform_route(model: Any, experts: list[Expert], mix: Mix = "output") -> Any:
    """mu-routing: every expert with coefficient 1/E in every layer, for every token."""
    weights = torch.full((len(experts),), 1.0 / len(experts))
    return install_routed(model, experts, lambda _: FixedRouter(weights), mix, "uniform_route")


def oracle(model: Any, experts: list[Expert], expert: str = "") -> Any:
    """Only the expert named `expert` (its folder or meta name; optional when there is one expert), added to
    the base weights."""
    names = [e.name for e in experts] + [e.path.name for e in experts]
    chosen = [e for e in experts if expert in (e.name, e.path.name)]
    if not expert and len(experts) == 1:
        chosen = experts
    elif not expert:
        raise LoralabError(
            f"--method oracle: name one expert with --opt expert=NAME ({', '.join(sorted(set(names)))})"
        )
    if not chosen:
        raise LoralabError(f"--opt expert={expert}: not among the experts ({', '.join(sorted(set(names)))})")
    with torch.no_grad():
        for module in chosen[0].modules:
            layer = model.get_submodule(module)
            layer.weight += chosen[0].delta(module).to(layer.weight.device, layer.weight.dtype)
    return model


def base(model: Any, experts: list[Expert]) -> Any:
    """The base model unchanged (the experts are ignored): the row every method is compared with."""
    return model
