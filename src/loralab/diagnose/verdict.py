"""The verdict: short labels computed from the measurements (no evaluation of the combination needed), and
the scores they rest on (their worth across a run's cells: `validate.py`).

Thresholds (`THRESHOLDS`), over the probes' focus tokens (last prompt token + continuation):

- `router flat (entropy R of max)`: mean routing entropy / ln E >= 0.9;
- `routes correctly (owner c)`: the owner's mean coefficient c >= 0.8;
  `routes at chance (owner c, chance 1/E)`: |c - 1/E| <= 0.1; `routes away from the owner`: c < 1/E - 0.1;
  anything between: `routes partly`;
- `picks the owner at the answer (top-1 x, chance 1/E)`: where the probes mark the gold answer's tokens in
  the continuation, the owner is the top expert at x >= 1/E + 0.15 of them; below that, `answer tokens at
  chance (top-1 x, chance 1/E)`. A mean coefficient near chance over all focus tokens can hide a router
  that picks the owner where the answer is written (SmolLM2: mean 0.53, answer top-1 0.73; README);
- `forgets by dilution (NAME keeps R of its accuracy at lambda L)`: on its strength curve, the expert's
  accuracy at the lambda the combination gives it (its mean routing coefficient on its own probes for a
  router; 1/E for uniform, uniform_factor and uniform_route; lam for task_arithmetic; its weight for
  linear and cat) is below 0.5 of its accuracy at lambda = 1; `strength holds` when every ratio >= 0.8;
- `does not compose (no expert owns the two-hop prompts)`: two-hop probes, and no expert trained on them;
  with `routes correctly` this reads `routes correctly, does not compose`;
- `no expert raises the two-hop answer (best +x nats)`: attribution on two-hop probes, all experts < 0.1;
- `interference (NAME lowers TASK answers by x nats)`: leaving NAME out raises another task's gold log p
  by more than 0.5 nats;
- `answers OWNER's questions with NAME's answers (x, k of n)`: among the probes an expert owns, the largest
  share x >= 0.25 that the combination answers with another expert's training answers (`answers.py`; the
  score `crosstalk` is that largest share, also below the threshold, over owners with at least 4 probes);
- `prototypes alike (|cos| x)`: mean prototype |cos| >= 0.5 (Arrow cannot tell the experts apart);
  `experts cancel (delta cos x)`: mean delta cosine <= -0.5; `TIES sign conflicts (x of shared entries)`:
  mean conflict rate >= 0.4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loralab.diagnose.answers import strongest
from loralab.diagnose.common import is_two_hop
from loralab.diagnose.strength import dilution

THRESHOLDS = {
    "flat_entropy_ratio": 0.9,
    "routes_correctly": 0.8,
    "chance_band": 0.1,
    "answer_pick": 0.15,
    "dilution_ratio": 0.5,
    "strength_holds": 0.8,
    "compose_nats": 0.1,
    "interference_nats": 0.5,
    "alike_cos": 0.5,
    "cancel_cos": -0.5,
    "sign_conflict": 0.4,
    "crosstalk": 0.25,
    "crosstalk_min_n": 4,
}
UNIFORM = ("uniform", "uniform_factor", "uniform_route")


def nominal_lambda(method: str, options: dict[str, Any], index: int, n: int) -> float | None:
    """The scale a merge gives expert `index` of `n` (None when the method has no single scale)."""
    if method in UNIFORM:
        return 1.0 / n
    if method == "task_arithmetic":
        return float(options.get("lam", 1.0))
    if method in ("linear", "cat"):
        w = options.get("weights")
        return float(w[index]) if isinstance(w, list | tuple) and len(w) == n else 1.0
    return None


def _routing_labels(routing: dict[str, Any], labels: list[str], scores: dict[str, Any]) -> None:
    t = THRESHOLDS
    focus = routing.get("by_class", {}).get("focus") or routing.get("overall", {})
    ratio = focus.get("entropy_ratio")
    scores["entropy_ratio"] = ratio
    if ratio is not None and ratio >= t["flat_entropy_ratio"]:
        labels.append(f"router flat (entropy {ratio:.2f} of max)")
    acc = routing.get("accuracy")
    if not acc:
        return
    owner, chance = acc.get("focus_tokens") or acc["all_tokens"], acc["chance"]
    scores["owner_coefficient"] = owner
    if owner >= t["routes_correctly"]:
        labels.append(f"routes correctly (owner {owner:.2f})")
    elif abs(owner - chance) <= t["chance_band"]:
        labels.append(f"routes at chance (owner {owner:.2f}, chance {chance:.2f})")
    elif owner < chance - t["chance_band"]:
        labels.append(f"routes away from the owner (owner {owner:.2f}, chance {chance:.2f})")
    else:
        labels.append(f"routes partly (owner {owner:.2f}, chance {chance:.2f})")
    answer = routing.get("by_class", {}).get("answer") or {}
    top1 = answer.get("owner_top1") if answer.get("tokens") else None
    scores["answer_owner_top1"] = top1
    if top1 is not None:
        picks = top1 >= chance + t["answer_pick"]
        what = "picks the owner at the answer" if picks else "answer tokens at chance"
        labels.append(f"{what} (top-1 {top1:.2f}, chance {chance:.2f})")


def _strength_labels(
    diag: dict[str, Any], method: str, options: dict[str, Any], labels: list[str], scores: dict[str, Any]
) -> None:
    curves = diag.get("strength", {}).get("curves") or []
    names = diag.get("experts", [])
    by_owner = (diag.get("routing", {}).get("accuracy") or {}).get("by_owner", {})
    ratios = []
    for curve in curves:
        name = curve["expert"]
        i = names.index(name) if name in names else 0
        lam = by_owner.get(name, {}).get("owner_coefficient") if by_owner else None
        if lam is None:
            lam = nominal_lambda(method, options, i, len(names))
        d = dilution(curve, lam) if lam is not None else None
        curve["effective_lambda"] = lam
        if d is None or d["ratio"] is None:
            continue
        ratios.append(d["ratio"])
        if d["ratio"] < THRESHOLDS["dilution_ratio"]:
            labels.append(
                f"forgets by dilution ({name} keeps {d['ratio']:.2f} of its accuracy at lambda {lam:.2f})"
            )
    if ratios:
        scores["dilution_ratio"] = float(np.mean(ratios))
        if min(ratios) >= THRESHOLDS["strength_holds"]:
            labels.append(f"strength holds (accuracy ratio >= {min(ratios):.2f} at the combination's lambda)")


def _compose_labels(diag: dict[str, Any], labels: list[str], scores: dict[str, Any]) -> None:
    probes = diag.get("probes", {})
    if probes.get("two_hop", 0) and not probes.get("two_hop_owned", 0):
        correct = [i for i, lab in enumerate(labels) if lab.startswith("routes correctly")]
        if correct:
            labels[correct[0]] = labels[correct[0]].replace(
                "routes correctly", "routes correctly, does not compose"
            )
            labels[correct[0]] += " (no expert owns the two-hop prompts)"
        else:
            labels.append("does not compose (no expert owns the two-hop prompts)")
    experts = diag.get("attribution", {}).get("experts") or {}
    two_hop = [
        v
        for e in experts.values()
        for t, v in e["all"].get("gold_by_task", {}).items()
        if is_two_hop(t) and v is not None
    ]
    if two_hop:
        best = max(two_hop)
        scores["attribution_two_hop_best"] = best
        if best < THRESHOLDS["compose_nats"]:
            labels.append(f"no expert raises the two-hop answer (best {best:+.2f} nats)")
    owned = probes.get("tasks_by_owner", {})
    for name, e in experts.items():
        for task, v in e["all"].get("gold_by_task", {}).items():
            if v is not None and v < -THRESHOLDS["interference_nats"] and task not in owned.get(name, []):
                labels.append(f"interference ({name} lowers {task} answers by {-v:.2f} nats)")


def _answers_labels(diag: dict[str, Any], labels: list[str], scores: dict[str, Any]) -> None:
    by_owner = diag.get("answers", {}).get("by_owner") or {}
    experts = diag.get("experts", [])
    owned = [o for o in experts if by_owner.get(o, {}).get("n", 0) >= THRESHOLDS["crosstalk_min_n"]]
    if not owned:
        return
    best = strongest({"library": {"": by_owner}}, only=owned)
    scores["crosstalk"] = best["share"] if best else 0.0
    if best and best["share"] >= THRESHOLDS["crosstalk"]:
        labels.append(
            f"answers {best['owner']}'s questions with {best['by']}'s answers ({best['share']:.2f}, "
            f"{best['count']} of {best['n']})"
        )


def _geometry_labels(geometry: dict[str, Any], labels: list[str], scores: dict[str, Any]) -> None:
    s = geometry.get("summary") or {}
    for key in ("prototype_abs_cos", "delta_cos", "sign_conflict", "input_angle_mean"):
        scores[key] = s.get(key)
    t = THRESHOLDS
    if s.get("prototype_abs_cos") is not None and s["prototype_abs_cos"] >= t["alike_cos"]:
        labels.append(f"prototypes alike (|cos| {s['prototype_abs_cos']:.2f})")
    if s.get("delta_cos") is not None and s["delta_cos"] <= t["cancel_cos"]:
        labels.append(f"experts cancel (delta cos {s['delta_cos']:.2f})")
    if s.get("sign_conflict") is not None and s["sign_conflict"] >= t["sign_conflict"]:
        labels.append(f"TIES sign conflicts ({s['sign_conflict']:.2f} of shared entries)")


def verdict(diag: dict[str, Any]) -> dict[str, Any]:
    """The `verdict` section: labels (strings) and the scores behind them (numbers or None)."""
    labels: list[str] = []
    scores: dict[str, Any] = {}
    method, options = diag.get("method", ""), diag.get("options", {})
    if "experts" in diag.get("routing", {}):
        _routing_labels(diag["routing"], labels, scores)
    _strength_labels(diag, method, options, labels, scores)
    _compose_labels(diag, labels, scores)
    if "by_owner" in diag.get("answers", {}):
        _answers_labels(diag, labels, scores)
    if "summary" in diag.get("geometry", {}):
        _geometry_labels(diag["geometry"], labels, scores)
    return {"labels": labels, "scores": scores, "thresholds": dict(THRESHOLDS)}
