"""Routing traces for any router: per routed module and token, the coefficients and how sure the router was.

Every router in loralab runs inside a `RoutedLinear`, which calls `module.router(x)` on the module's input
vectors and mixes its experts by the returned coefficients (N x E). A forward hook on each router sees both,
so the trace needs nothing from the router itself. Per module and token it records:

- the coefficients c (E) and their entropy H = -sum c ln c (ln E when flat, 0 when one expert takes all);
- the largest coefficient and the *logit margin* between the top two experts: for a router with prototypes
  (Arrow) the pre-softmax scores |x . p_e| / T, for any other router ln c1 - ln c2 (0 for a fixed router);
- |x| and, where the router has prototypes, |x . p_e| per expert.

Summaries average over tokens per module, per layer, per token class (`common.CLASSES`) and overall.
Routing accuracy, on probes whose owner is known, is the mean coefficient of the owner expert (1 when the
router always picks it alone, 1/E for a flat router), and how often the owner has the largest coefficient.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from loralab.combination.routed import RoutedLinear
from loralab.diagnose.common import CLASSES, Probe, layer_of

STATS = ("entropy", "max_coefficient", "margin", "x_norm")


def routed_modules(model: Any) -> dict[str, RoutedLinear]:
    """The model's routed linear layers by name (empty for a merged or plain model)."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, RoutedLinear)}


@contextlib.contextmanager
def capture(model: Any) -> Iterator[dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """While open, each forward pass leaves {module: (inputs N x d, coefficients N x E)} in the yielded dict."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, mod in routed_modules(model).items():

        def hook(_: Any, inputs: tuple[Any, ...], output: torch.Tensor, name: str = name) -> None:
            seen[name] = (inputs[0].detach().double(), output.detach().double())

        handles.append(mod.router.register_forward_hook(hook))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def router_scores(router: Any, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(|x . p_e| per expert, the pre-softmax logits |x . p_e| / T) for a router with prototypes, else Nones."""
    protos = getattr(router, "prototypes", None)
    if not isinstance(protos, torch.Tensor):
        return None, None
    proj = (x @ protos.T.to(x.dtype)).abs()
    return proj, proj / float(getattr(router, "temperature", 1.0))


def token_stats(router: Any, x: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per token: entropy, max coefficient, top-2 logit margin, |x|, and |x . p_e| where there are prototypes."""
    entropy = -(c * torch.log(c.clamp(min=1e-300))).sum(-1)
    proj, logits = router_scores(router, x)
    if logits is None:
        logits = torch.log(c.clamp(min=1e-300))
    if c.shape[-1] > 1:
        top = logits.topk(2, dim=-1).values
        margin = top[:, 0] - top[:, 1]
    else:
        margin = torch.zeros(c.shape[0], dtype=c.dtype)
    out = {
        "entropy": entropy,
        "max_coefficient": c.max(-1).values,
        "margin": margin,
        "x_norm": x.norm(dim=-1),
    }
    out["coefficients"] = c
    if proj is not None:
        out["projections"] = proj
    return out


class Sums:
    """Running sums of the token stats of one (module, token class) cell."""

    def __init__(self, n_experts: int) -> None:
        self.n = 0
        self.scalars = dict.fromkeys(STATS, 0.0)
        self.coefficients = torch.zeros(n_experts, dtype=torch.float64)
        self.projections: torch.Tensor | None = None
        self.owner_n = 0
        self.owner_coef = 0.0
        self.owner_top = 0

    def add(self, stats: dict[str, torch.Tensor], idx: list[int], owner: int | None) -> None:
        if not idx:
            return
        self.n += len(idx)
        for k in STATS:
            self.scalars[k] += float(stats[k][idx].sum())
        c = stats["coefficients"][idx]
        self.coefficients += c.sum(0)
        if "projections" in stats:
            p = stats["projections"][idx].sum(0)
            self.projections = p if self.projections is None else self.projections + p
        if owner is not None:
            self.owner_n += len(idx)
            self.owner_coef += float(c[:, owner].sum())
            self.owner_top += int((c.argmax(-1) == owner).sum())

    def merge(self, other: Sums) -> None:
        self.n += other.n
        for k in STATS:
            self.scalars[k] += other.scalars[k]
        self.coefficients += other.coefficients
        if other.projections is not None:
            self.projections = (
                other.projections.clone()
                if self.projections is None
                else self.projections + other.projections
            )
        self.owner_n += other.owner_n
        self.owner_coef += other.owner_coef
        self.owner_top += other.owner_top

    def summary(self, max_entropy: float) -> dict[str, Any]:
        if self.n == 0:
            return {"tokens": 0}
        out: dict[str, Any] = {"tokens": self.n, **{k: v / self.n for k, v in self.scalars.items()}}
        out["entropy_ratio"] = out["entropy"] / max_entropy if max_entropy > 0 else 0.0
        out["coefficients"] = (self.coefficients / self.n).tolist()
        out["projections"] = None if self.projections is None else (self.projections / self.n).tolist()
        if self.owner_n:
            out["owner_coefficient"] = self.owner_coef / self.owner_n
            out["owner_top1"] = self.owner_top / self.owner_n
        return out


def _combine(cells: Sequence[Sums], n_experts: int) -> Sums:
    total = Sums(n_experts)
    for s in cells:
        total.merge(s)
    return total


@torch.inference_mode()
def trace(model: Any, probes: Sequence[Probe], names: Sequence[str], heatmaps: int = 1) -> dict[str, Any]:
    """Run each probe once through `model` (teacher-forced on its tokens) and summarise the routing.

    `names` are the experts in library order. Returns the `routing` section of diagnostics.json.
    """
    modules = routed_modules(model)
    n_exp = len(names)
    max_entropy = math.log(n_exp) if n_exp > 1 else 0.0
    cells: dict[tuple[str, str], Sums] = {}
    by_expert: dict[int, Sums] = {}
    maps = []
    device = next(model.parameters()).device
    for k, probe in enumerate(probes):
        with capture(model) as seen:
            model(input_ids=torch.tensor([probe.ids], device=device))
        per_layer: dict[int, list[torch.Tensor]] = {}
        for name, (x, c) in seen.items():
            stats = token_stats(modules[name].router, x.cpu(), c.cpu())
            for cls, idx in probe.classes.items():
                cells.setdefault((name, cls), Sums(n_exp)).add(stats, idx, probe.owner)
            if probe.owner is not None:
                by_expert.setdefault(probe.owner, Sums(n_exp)).add(stats, probe.classes["focus"], probe.owner)
            per_layer.setdefault(layer_of(name), []).append(stats["coefficients"])
        if k < heatmaps:
            maps.append(_heatmap(probe, per_layer, names))
    return _summarise(cells, by_expert, names, max_entropy, len(probes), maps)


def _heatmap(probe: Probe, per_layer: dict[int, list[torch.Tensor]], names: Sequence[str]) -> dict[str, Any]:
    """Layer x token coefficients of one probe (mean over the layer's routed modules): the owner's
    coefficient when known, else the largest one; and expert x token (mean over all modules)."""
    layers = sorted(per_layer)
    mean = {lay: torch.stack(per_layer[lay]).mean(0) for lay in layers}
    pick = (lambda c: c[:, probe.owner]) if probe.owner is not None else (lambda c: c.max(-1).values)
    every = torch.stack([c for lay in layers for c in per_layer[lay]]).mean(0)
    return {
        "prompt": probe.row.get("prompt"),
        "tokens": probe.tokens,
        "n_prompt": probe.n_prompt,
        "layers": layers,
        "what": f"coefficient of the owner ({names[probe.owner]})"
        if probe.owner is not None
        else "max coefficient",
        "layer_token": [pick(mean[lay]).tolist() for lay in layers],
        "expert_token": every.T.tolist(),
        "experts": list(names),
    }


def _summarise(
    cells: dict[tuple[str, str], Sums],
    by_expert: dict[int, Sums],
    names: Sequence[str],
    max_entropy: float,
    n_probes: int,
    maps: list[dict[str, Any]],
) -> dict[str, Any]:
    n_exp = len(names)
    modules = sorted({m for m, _ in cells}, key=lambda m: (layer_of(m), m))
    classes = [c for c in CLASSES if any((m, c) in cells for m in modules)]
    by_module = {m: cells[(m, "all")].summary(max_entropy) for m in modules if (m, "all") in cells}
    by_layer = {}
    for lay in sorted({layer_of(m) for m in modules}):
        group = [cells[(m, "all")] for m in modules if layer_of(m) == lay and (m, "all") in cells]
        by_layer[str(lay)] = _combine(group, n_exp).summary(max_entropy)
    by_class = {
        c: _combine([cells[(m, c)] for m in modules if (m, c) in cells], n_exp).summary(max_entropy)
        for c in classes
    }
    out: dict[str, Any] = {
        "experts": list(names),
        "probes": n_probes,
        "max_entropy": max_entropy,
        "overall": by_class.get("all", {"tokens": 0}),
        "by_class": by_class,
        "by_layer": by_layer,
        "by_module": by_module,
        "heatmaps": maps,
    }
    labelled = by_class.get("all", {}).get("owner_coefficient") is not None
    if labelled:
        out["accuracy"] = {
            "chance": 1.0 / n_exp,
            "all_tokens": by_class["all"]["owner_coefficient"],
            "all_tokens_top1": by_class["all"]["owner_top1"],
            "focus_tokens": by_class["focus"].get("owner_coefficient"),
            "focus_tokens_top1": by_class["focus"].get("owner_top1"),
            "by_owner": {
                names[i]: {
                    k: v
                    for k, v in s.summary(max_entropy).items()
                    if k in ("tokens", "owner_coefficient", "owner_top1")
                }
                for i, s in sorted(by_expert.items())
            },
        }
    return out
