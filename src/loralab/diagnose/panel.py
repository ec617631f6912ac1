"""`diagnose`: every measurement of one combination (base + experts + method) on a set of probes, as the
dict written to diagnostics.json, and `write_diagnostics` (JSON + HTML, atomically)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loralab.artifacts import atomic_dir, check_replaceable, provenance, write_json
from loralab.combination import combine, get_method
from loralab.combination.registry import coerce_options
from loralab.diagnose import DIAGNOSTICS, PARTS
from loralab.diagnose.answers import answer_section
from loralab.diagnose.attribution import attribution
from loralab.diagnose.common import is_two_hop, make_probe, owners
from loralab.diagnose.geometry import geometry
from loralab.diagnose.html import render_html
from loralab.diagnose.routing import trace
from loralab.diagnose.strength import LAMBDAS, max_new_tokens, strength_curve
from loralab.diagnose.verdict import verdict
from loralab.evaluation import generate
from loralab.experts.library import Expert, check_compatible, distinct, load_expert
from loralab.models.load import load_base

PAGE = "diagnostics.html"
OUTPUTS = (DIAGNOSTICS, PAGE)
"""What a diagnosis folder holds."""


def _probe_summary(
    rows: Sequence[dict[str, Any]], own: list[int | None], source: str | None, names: list[str]
) -> dict[str, Any]:
    two_hop = [o for r, o in zip(rows, own, strict=True) if is_two_hop(r.get("task"))]
    by_owner: dict[str, list[str]] = {}
    for r, o in zip(rows, own, strict=True):
        if o is not None and r.get("task"):
            by_owner.setdefault(names[o], [])
            if r["task"] not in by_owner[names[o]]:
                by_owner[names[o]].append(str(r["task"]))
    return {
        "n": len(rows),
        "labelled": sum(o is not None for o in own),
        "labels_from": source,
        "two_hop": len(two_hop),
        "two_hop_owned": sum(o is not None for o in two_hop),
        "tasks_by_owner": by_owner,
    }


def diagnose(
    base: Any,
    experts: Sequence[Path | str | Expert],
    method: str,
    options: dict[str, Any] | None,
    rows: Sequence[dict[str, Any]],
    parts: Sequence[str] = PARTS,
    outputs: Sequence[str] | None = None,
    lambdas: Sequence[float] = LAMBDAS,
    density: float = 0.2,
    source: str = "data",
    batch_size: int = 64,
) -> dict[str, Any]:
    """The diagnostics of `experts` combined by `method` on probe `rows` (prompt, gold, ...).

    `base` is a base name, a folder or a (model, tokenizer) pair (copied, never changed). `outputs` are the
    combination's own answers to `rows` when already known (a cell's evaluation); else they are generated
    for the routing trace. Sections not in `parts`, or that do not apply, hold {"skipped": reason}.
    """
    spec = get_method(method)
    opts = coerce_options(spec, dict(options or {}))
    loaded = distinct([e if isinstance(e, Expert) else load_expert(e) for e in experts])
    pristine, tokenizer = base if isinstance(base, tuple) else load_base(base)
    if loaded:
        check_compatible(loaded, pristine)
    names = [e.name for e in loaded]
    own: list[int | None] = [None] * len(rows)
    label_source: str | None = None
    if loaded:
        own, label_source = owners(rows, loaded, source)
    out: dict[str, Any] = {
        "kind": "diagnostics",
        "method": method,
        "method_kind": spec.kind,
        "options": opts,
        "experts": names,
        "expert_paths": [str(e.path) for e in loaded],
        "probes": _probe_summary(rows, own, label_source, names),
        "notes": [],
    }
    notes: list[str] = out["notes"]
    if label_source is None and loaded:
        notes.append(
            f"{source}: no row carries an `expert` label (nor does any expert's training data name its "
            "task): routing accuracy and strength curves skipped"
        )
    if not loaded:
        notes.append("no experts: only the base; nothing to diagnose")
    for part in PARTS:
        out[part] = {"skipped": "not asked for"} if part not in parts else {"skipped": "no experts"}
    if loaded and "answers" in parts:
        if spec.kind == "baseline":
            out["answers"] = {
                "skipped": f"{method} is a comparison row: no combination to sort the answers of"
            }
        else:
            if outputs is None:  # generated once, for the routing trace too
                model = combine((copy.deepcopy(pristine), tokenizer), loaded, method, **opts)
                prompts = [r["prompt"] for r in rows]
                outputs = generate(model, tokenizer, prompts, max_new_tokens(rows), batch_size, "answers")
                del model
            out["answers"] = answer_section(rows, outputs, own, loaded)
    if loaded and "routing" in parts:
        out["routing"] = _routing(spec, pristine, tokenizer, loaded, opts, rows, outputs, own, batch_size)
        if "skipped" in out["routing"]:
            notes.append(out["routing"]["skipped"])
        elif label_source is None:
            out["routing"]["accuracy_skipped"] = "no `expert` labels"
    if loaded and "geometry" in parts:
        out["geometry"] = geometry(loaded, density)
    if loaded and "strength" in parts:
        out["strength"] = _strength(pristine, tokenizer, loaded, rows, own, lambdas, batch_size)
    if loaded and "attribution" in parts:
        if spec.kind == "baseline":
            out["attribution"] = {"skipped": f"{method} is a comparison row: no combination to take apart"}
        else:
            out["attribution"] = attribution(pristine, tokenizer, loaded, method, opts, rows)
    out["verdict"] = verdict(out)
    return out


def _routing(
    spec: Any,
    pristine: Any,
    tokenizer: Any,
    loaded: list[Expert],
    opts: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    outputs: Sequence[str] | None,
    own: list[int | None],
    batch_size: int,
) -> dict[str, Any]:
    """The routing section: the router's trace over the probes (answers generated when not given), or why it
    is skipped (a merge has no router)."""
    if spec.kind != "router":
        return {"skipped": f"{spec.name} is a {spec.kind} (no router): routing skipped"}
    model = spec.fn(copy.deepcopy(pristine), loaded, **opts)
    if outputs is None:
        prompts = [r["prompt"] for r in rows]
        outputs = generate(model, tokenizer, prompts, max_new_tokens(rows), batch_size, "routing trace")
    probes = [make_probe(tokenizer, r, o, w) for r, o, w in zip(rows, outputs, own, strict=True)]
    return trace(model, probes, [e.name for e in loaded])


def _strength(
    pristine: Any,
    tokenizer: Any,
    experts: Sequence[Expert],
    rows: Sequence[dict[str, Any]],
    own: list[int | None],
    lambdas: Sequence[float],
    batch_size: int,
) -> dict[str, Any]:
    curves, skipped = [], []
    model = copy.deepcopy(pristine)
    for i, e in enumerate(experts):
        mine = [r for r, o in zip(rows, own, strict=True) if o == i]
        if not mine:
            skipped.append(e.name)
            continue
        curves.append(strength_curve(model, tokenizer, e, mine, lambdas, batch_size))
    return {"lambdas": list(lambdas), "curves": curves, "no_probes": skipped}


def write_diagnostics(result: dict[str, Any], out: Path | str, overwrite: bool = False) -> Path:
    """diagnostics.json and diagnostics.html into folder `out` (written whole, then renamed; an existing `out`
    is replaced only with `overwrite` and only if it holds nothing else)."""
    out = Path(out)
    check_replaceable(out, "--out", OUTPUTS, "a diagnosis")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / DIAGNOSTICS, {**result, "provenance": provenance()})
        (tmp / PAGE).write_text(render_html(result))
    return out
