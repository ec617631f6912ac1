"""Attribution: what each expert contributes to the gold answer, by leaving it out.

For each probe, the reference answer (`answer`, else `gold`) is teacher-forced after the prompt, and the
score is log p of the gold entity's tokens (its last mention) and, for two-hop CoT rows, of the bridge
entity B's tokens (its first mention). For expert e and a layer group g (attention / MLP x early / late
half of the blocks, and `all`), the combination *without* e (the same method over the other experts; the
base when e is the only one) replaces the full combination in g's modules only, and

    attribution(e, g) = score(full) - score(full with g's modules taken from the combination without e)

in nats, averaged over probes: positive when e raises the gold answer there, negative when it hurts.
Per-expert list options (`weights`) are cut to the remaining experts.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from loralab.combination import combine
from loralab.diagnose.common import Probe, layer_groups, make_probe
from loralab.experts.library import Expert

Score = Callable[[Any], torch.Tensor]


@contextlib.contextmanager
def swapped(a: Any, b: Any, modules: Sequence[str]) -> Iterator[None]:
    """Exchange the named submodules of models `a` and `b` (same architecture) while open."""

    def exchange() -> None:
        for name in modules:
            parent, _, child = name.rpartition(".")
            pa = a.get_submodule(parent) if parent else a
            pb = b.get_submodule(parent) if parent else b
            ma, mb = getattr(pa, child), getattr(pb, child)
            setattr(pa, child, mb)
            setattr(pb, child, ma)

    exchange()
    try:
        yield
    finally:
        exchange()


def leave_one_out(
    full: Any, without: Callable[[int], Any], n_experts: int, groups: dict[str, list[str]], score: Score
) -> dict[int, dict[str, torch.Tensor]]:
    """Per expert e and group g: score(full) - score(full with g's modules from `without(e)`)."""
    reference = score(full)
    out: dict[int, dict[str, torch.Tensor]] = {}
    for e in range(n_experts):
        other = without(e)
        out[e] = {}
        for g, modules in groups.items():
            with swapped(full, other, modules):
                out[e][g] = reference - score(full)
        del other
    return out


def reference_probes(tokenizer: Any, rows: Sequence[dict[str, Any]]) -> list[Probe]:
    """Each row with its reference answer as the continuation."""
    return [make_probe(tokenizer, r, str(r.get("answer") or r.get("gold") or "")) for r in rows]


def lm_score(probes: Sequence[Probe]) -> Score:
    """A score function: per probe, (log p of the gold tokens, log p of the bridge tokens), NaN if absent."""

    @torch.inference_mode()
    def score(model: Any) -> torch.Tensor:
        device = next(model.parameters()).device
        out = torch.full((len(probes), 2), math.nan, dtype=torch.float64)
        for k, p in enumerate(probes):
            ids = torch.tensor([p.ids], device=device)
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1).cpu()
            for col, cls in enumerate(("answer", "bridge")):
                idx = [i for i in p.classes.get(cls, []) if i > 0]
                if idx:
                    out[k, col] = sum(float(logp[i - 1, p.ids[i]]) for i in idx)
        return out

    return score


def _without_options(options: dict[str, Any], e: int, n: int) -> dict[str, Any]:
    out = dict(options)
    w = out.get("weights")
    if isinstance(w, list | tuple) and len(w) == n:
        out["weights"] = [x for i, x in enumerate(w) if i != e]
    return out


def _mean(t: torch.Tensor) -> float | None:
    ok = t[~torch.isnan(t)]
    return float(ok.mean()) if ok.numel() else None


def attribution(
    pristine: Any,
    tokenizer: Any,
    experts: Sequence[Expert],
    method: str,
    options: dict[str, Any],
    rows: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The `attribution` section of diagnostics.json. `pristine` (the base) is copied, never changed."""
    probes = reference_probes(tokenizer, rows)
    n = len(experts)

    def build(members: Sequence[Expert], opts: dict[str, Any]) -> Any:
        model = copy.deepcopy(pristine)
        return combine((model, tokenizer), list(members), method, **opts) if members else model

    full = build(experts, options)
    groups = {**layer_groups(experts[0].modules), "all": list(experts[0].modules)}
    score = lm_score(probes)
    reference = score(full)
    deltas = leave_one_out(
        full,
        lambda e: build([x for i, x in enumerate(experts) if i != e], _without_options(options, e, n)),
        n,
        groups,
        score,
    )
    tasks = sorted({str(r.get("task")) for r in rows if r.get("task")})
    per_expert = {}
    for e, by_group in deltas.items():
        entry: dict[str, Any] = {
            g: {"gold": _mean(d[:, 0]), "bridge": _mean(d[:, 1])} for g, d in by_group.items()
        }
        entry["all"]["gold_by_task"] = {
            t: _mean(by_group["all"][[k for k, r in enumerate(rows) if r.get("task") == t], 0]) for t in tasks
        }
        per_expert[experts[e].name] = entry
    return {
        "probes": len(probes),
        "groups": {g: len(m) for g, m in groups.items()},
        "reference": {"gold": _mean(reference[:, 0]), "bridge": _mean(reference[:, 1])},
        "experts": per_expert,
        "unit": "nats: log p(full) - log p(without the expert in the group's modules)",
    }
