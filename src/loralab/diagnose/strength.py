"""Strength curves: one expert alone, its delta scaled by lambda, on its own held-out questions.

The model at lambda is the base plus the `task_arithmetic` merge of the expert alone with `lam=lambda`
(W + lambda s B A), applied exactly as `loralab.combine` applies a merge, so lambda = 0 is the base and
lambda = 1 is what `loralab eval --expert E` evaluates (its default method, `uniform`, of one expert is the
same delta, bit for bit). A Uniform merge of E experts gives each lambda = 1/E: if the expert already
forgets at lambda = 1/E, the combination fails by *dilution*, before any other expert interferes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from loralab.combination import merge
from loralab.evaluation import evaluate
from loralab.experts.library import Expert

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def max_new_tokens(rows: Sequence[dict[str, Any]]) -> int:
    """The runner's decoding budget: 128 tokens when any row asks for CoT, else 48."""
    return 128 if any(r.get("format") == "cot" for r in rows) else 48


@torch.no_grad()
def strength_curve(
    model: Any,
    tokenizer: Any,
    expert: Expert,
    rows: Sequence[dict[str, Any]],
    lambdas: Sequence[float] = LAMBDAS,
    batch_size: int = 64,
    keep_outputs: bool = False,
) -> dict[str, Any]:
    """Accuracy on `rows` at each lambda (and the outputs, with `keep_outputs`). `model` is the base; its
    adapted weights are restored after."""
    originals = {m: model.get_submodule(m).weight.detach().clone() for m in expert.modules}
    points = []
    try:
        for lam in lambdas:
            merged = merge([expert], "task_arithmetic", lam=float(lam))
            for m, w in originals.items():
                layer = model.get_submodule(m)
                layer.weight.copy_(w)
                layer.weight += merged.delta(m).to(layer.weight.device, layer.weight.dtype)
            result = evaluate(
                model,
                tokenizer,
                list(rows),
                max_new_tokens(rows),
                batch_size,
                f"strength {expert.name} x{lam}",
            )
            point: dict[str, Any] = {
                "lambda": float(lam),
                "accuracy": result.accuracy,
                "n": result.n,
                "correct": result.correct,
            }
            if keep_outputs:
                point["outputs"] = [r["output"] for r in result.rows]
            points.append(point)
    finally:
        for m, w in originals.items():
            model.get_submodule(m).weight.copy_(w)
    return {"expert": expert.name, "points": points}


def accuracy_at(curve: dict[str, Any], lam: float) -> float | None:
    """The curve's accuracy at `lam`, linearly interpolated between measured lambdas (None outside them)."""
    xs = [p["lambda"] for p in curve["points"]]
    ys = [p["accuracy"] for p in curve["points"]]
    if not xs or lam < min(xs) or lam > max(xs):
        return None
    return float(np.interp(lam, xs, ys))


def dilution(curve: dict[str, Any], lam: float) -> dict[str, Any] | None:
    """Accuracy at lambda = `lam` (what the combination gives the expert) against lambda = 1, and their ratio."""
    full = accuracy_at(curve, 1.0)
    at = accuracy_at(curve, lam)
    if full is None or at is None:
        return None
    return {"lambda": lam, "accuracy": at, "accuracy_at_1": full, "ratio": at / full if full > 0 else None}
