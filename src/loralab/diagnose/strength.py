"""Strength curves: one expert alone, its delta scaled by lambda, on its own held-out questions.

The model at lambda is the base plus the `task_arithmetic` merge of the expert alone with `lam=lambda`
(W + lambda s B A), applied exactly as `loralab.combine` applies a merge, so lambda = 0 is the base and
lambda = 1 is what `loralab eval --expert E` evaluates (its default method, `uniform`, of one expert is the
same delta, bit for bit). A Uniform merge of E experts gives each lambda = 1/E: if the expert already
forgets at lambda = 1/E, the combination fails by *dilution*, before any other expert interferes.

Beside accuracy, each point has the *margin*: teacher-forced on the row's reference answer (the gold alone
where a row has none), the logit of the gold answer's first token minus the best other logit at the position
that predicts it (the gold's last mention, as `common.make_probe` finds it), averaged over the rows. At lambda
= 0 a negative margin is the base's own preference against the gold; margin(1) - margin(0) is the expert's
*push*. The margin moves close to linearly with lambda on the bases measured (`models/README.md`), so an
expert holds a fact at strength 1/E only where its push exceeds E times the base's preference: `push`
summarises that ratio, a continuous reading of dilution that needs no generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from loralab.combination import merge
from loralab.diagnose.common import make_probe
from loralab.evaluation import evaluate
from loralab.experts.library import Expert

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
MARGIN_BATCH = 8
"""Rows per forward pass of `gold_margins` (it keeps every position's logits: batch x length x vocabulary)."""


def max_new_tokens(rows: Sequence[dict[str, Any]]) -> int:
    """The runner's decoding budget: 128 tokens when any row asks for CoT, else 48."""
    return 128 if any(r.get("format") == "cot" for r in rows) else 48


@torch.no_grad()
def gold_margins(
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], batch_size: int = MARGIN_BATCH
) -> list[float | None]:
    """Per row, teacher-forced on its reference answer (`answer`, else `gold`): the first gold token's logit
    minus the best other logit where it is predicted; None for a row whose answer does not contain its gold."""
    todo: list[tuple[int, list[int], int]] = []  # (row, token ids, position of the gold's first token)
    for i, row in enumerate(rows):
        probe = make_probe(tokenizer, row, str(row.get("answer") or row.get("gold") or ""))
        where = probe.classes.get("answer") or []
        if row.get("gold") and where and where[0] > 0:
            todo.append((i, probe.ids, where[0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out: list[float | None] = [None] * len(rows)
    step = max(1, batch_size)
    for start in range(0, len(todo), step):
        chunk = todo[start : start + step]
        length = max(len(seq) for _, seq, _ in chunk)
        ids = torch.full((len(chunk), length), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), length), dtype=torch.long)
        for k, (_, seq, _) in enumerate(chunk):
            ids[k, : len(seq)] = torch.tensor(seq)
            mask[k, : len(seq)] = 1  # right padding: the real positions see only themselves and earlier ones
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for k, (i, seq, pos) in enumerate(chunk):
            scores = logits[k, pos - 1].float().clone()
            gold = float(scores[seq[pos]])
            scores[seq[pos]] = -torch.inf
            out[i] = gold - float(scores.max())
    return out


def delta_size(model: Any, expert: Expert) -> float:
    """The mean over the expert's modules of |s B A|_F / |W|_F: how large an edit of the weights it is."""
    sizes = []
    for m in expert.modules:
        w = float(model.get_submodule(m).weight.detach().float().norm())
        sizes.append(float(expert.delta(m).norm()) / max(w, 1e-30))
    return float(np.mean(sizes)) if sizes else float("nan")


def push(curve: dict[str, Any]) -> dict[str, float | None] | None:
    """From a curve with margins at lambda 0 and 1: the base's margin, the expert's, the push (their
    difference) and the push over the base's preference against the gold (None where the base already
    prefers the gold, margin >= 0)."""
    at = {p["lambda"]: p.get("margin") for p in curve["points"]}
    m0, m1 = at.get(0.0), at.get(1.0)
    if m0 is None or m1 is None:
        return None
    return {"base": m0, "alone": m1, "push": m1 - m0, "ratio": (m1 - m0) / -m0 if m0 < 0 else None}


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
    """Accuracy and mean gold margin on `rows` at each lambda (and the outputs, with `keep_outputs`), and the
    delta's relative size. `model` is the base; its adapted weights are restored after."""
    originals = {m: model.get_submodule(m).weight.detach().clone() for m in expert.modules}
    size = delta_size(model, expert)
    points = []
    n_margin = 0
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
            margins = [m for m in gold_margins(model, tokenizer, rows) if m is not None]
            n_margin = len(margins)
            point: dict[str, Any] = {
                "lambda": float(lam),
                "accuracy": result.accuracy,
                "n": result.n,
                "correct": result.correct,
                "margin": float(np.mean(margins)) if margins else None,
                "margin_positive": float(np.mean([m > 0 for m in margins])) if margins else None,
            }
            if keep_outputs:
                point["outputs"] = [r["output"] for r in result.rows]
            points.append(point)
    finally:
        for m, w in originals.items():
            model.get_submodule(m).weight.copy_(w)
    return {"expert": expert.name, "points": points, "margin_n": n_margin, "delta_size": size}


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
