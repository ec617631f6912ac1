"""`audit`: a library's experts checked against each other, for any PEFT LoRA library.

Per expert, probes are its own held-out questions: the test split beside each training file its meta.json
lists (loralab-trained experts), else the rows of a `--probe` file whose `expert` field names it (rows
`{prompt, answer, expert}`; `gold` defaults to `answer`). Then:

- alone: each expert's strength curve (accuracy and the gold answer's teacher-forced margin on its own
  probes at lambda x its delta; lambda = 1 is the expert alone) and its delta's size;
- pairwise interference, per method: each pair combined; `drop[i][j]` = expert i's accuracy alone minus its
  accuracy combined with expert j (positive: j costs i that much);
- the whole library, per method: each expert's accuracy combined with all the others, and for routers the
  routing accuracy (mean coefficient of the owner on its own probes);
- whose answers (`answers.py`): each expert alone on the other experts' probes, and the whole library on every
  probe, with each answer sorted as the gold, the owner's kind of answer, another expert's answer, or other:
  interference one can read, an expert's edit answering questions that are not its relation's;
- the geometry summary, and a one-paragraph reading of all this.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from loralab.artifacts import atomic_dir, check_replaceable, provenance, write_json
from loralab.combination import combine, get_method
from loralab.diagnose.answers import (
    Sorter,
    alone_rows,
    answer_header,
    answer_rows,
    strongest,
    tally,
    vocabularies,
)
from loralab.diagnose.common import make_probe
from loralab.diagnose.geometry import geometry
from loralab.diagnose.html import CSS, heatmap_png, margin_table, table
from loralab.diagnose.routing import trace
from loralab.diagnose.strength import LAMBDAS, max_new_tokens, push, strength_curve
from loralab.errors import LoralabError
from loralab.evaluation import evaluate
from loralab.experts.library import (
    ADAPTER_CONFIG,
    Expert,
    answering_to,
    check_compatible,
    distinct,
    load_expert,
    refuse_repeats,
)
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl

AUDIT = "audit.json"
OUTPUTS = (AUDIT, "audit.html", "reading.txt")
"""What an audit folder holds."""


def library_experts(paths: Sequence[Path]) -> list[Path]:
    """Expert folders; a library folder (expert subfolders, no adapter_config.json) stands for its experts."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            found = "a file, not a folder" if p.exists() else "not found"
            raise LoralabError(f"{p}: {found} (give a library or expert folder)")
        if (p / ADAPTER_CONFIG).is_file():
            out.append(p)
            continue
        subs = sorted(q for q in p.iterdir() if (q / ADAPTER_CONFIG).is_file())
        if not subs:
            raise LoralabError(f"{p}: neither an adapter folder nor a library of experts")
        out.extend(subs)
    refuse_repeats(out)
    return out


def heldout_rows(expert: Expert) -> list[dict[str, Any]]:
    """The test split of each of the expert's training files (`X.train.jsonl` -> `X.test.jsonl`; for a
    mixture, the test file of each task it holds), labelled with the expert's name."""
    files: list[Path] = []
    for f in expert.meta.get("data") or []:
        path = Path(f)
        test = path.with_name(path.name.replace(".train.", ".test."))
        if ".train." in path.name and test.is_file():
            files.append(test)
        elif path.is_file():
            tasks = {str(r.get("task")) for r in read_jsonl(path, required=("prompt",))}
            files += [
                path.parent / f"{t}.test.jsonl"
                for t in sorted(tasks)
                if (path.parent / f"{t}.test.jsonl").is_file()
            ]
    rows = []
    for f in dict.fromkeys(files):
        rows += [{**r, "expert": expert.name} for r in read_jsonl(f, required=("prompt", "gold"))]
    return rows


def probe_sets(
    experts: Sequence[Expert], probe: Path | None, per_expert: int
) -> dict[int, list[dict[str, Any]]]:
    """Per expert index, up to `per_expert` probe rows (spread evenly over its held-out rows)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    if probe is not None:
        for n, r in enumerate(read_jsonl(probe, required=("prompt",)), 1):
            if not isinstance(r.get("expert"), str) or not (r.get("gold") or r.get("answer")):
                raise LoralabError(f"{probe}: row {n} needs string fields expert and answer (or gold)")
            by_name.setdefault(r["expert"], []).append({**r, "gold": r.get("gold") or r["answer"]})
        known = {e.name for e in experts} | {e.path.name for e in experts}
        unknown = sorted(set(by_name) - known)
        if unknown:
            raise LoralabError(
                f"{probe}: expert {unknown[0]!r} is not in the library ({', '.join(sorted(known))})"
            )
        for label in sorted(by_name):
            named = [str(e.path) for e in answering_to(experts, label)]
            if len(named) > 1:
                raise LoralabError(
                    f"{probe}: expert {label!r} could be any of {', '.join(named)}: label its rows by "
                    "the names the audit gives them (the folder's path where folder names repeat)"
                )
    out = {}
    for i, e in enumerate(experts):
        rows = (
            by_name.get(e.name) or by_name.get(e.path.name) or ([] if probe is not None else heldout_rows(e))
        )
        rows = [{**r, "expert": e.name} for r in rows]
        if len(rows) > per_expert:
            rows = [rows[k] for k in np.linspace(0, len(rows) - 1, per_expert).round().astype(int)]
        if rows:
            out[i] = rows
    return out


def _accuracy(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch: int, label: str
) -> tuple[float, list[str]]:
    result = evaluate(model, tokenizer, rows, max_new_tokens(rows), batch, label)
    return result.accuracy, [r["output"] for r in result.rows]


def _by_expert(rows: list[dict[str, Any]], correct: list[bool], names: list[str]) -> dict[str, float]:
    out = {}
    for n in names:
        mine = [c for r, c in zip(rows, correct, strict=True) if r["expert"] == n]
        if mine:
            out[n] = sum(mine) / len(mine)
    return out


def audit(
    library: Sequence[Path],
    base: Any,
    probe: Path | None = None,
    methods: Sequence[str] = ("uniform", "arrow"),
    per_expert: int = 16,
    lambdas: Sequence[float] = LAMBDAS,
    density: float = 0.2,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Every number of the audit (see the module docstring), with the reading."""
    specs = [get_method(m) for m in methods]
    for s in specs:
        if s.kind not in ("merge", "router"):
            raise LoralabError(f"--method {s.name}: audit combines with merges and routers, not a {s.kind}")
    experts = distinct([load_expert(p) for p in library_experts(list(library))])
    pristine, tokenizer = base if isinstance(base, tuple) else load_base(base)
    check_compatible(experts, pristine)
    names = [e.name for e in experts]
    probes = probe_sets(experts, probe, per_expert)
    if not probes:
        raise LoralabError(
            "--probe: no expert has probes (not trained by loralab, or held-out files gone): pass --probe FILE.jsonl"
        )
    work = copy.deepcopy(pristine)
    curves = {
        names[i]: strength_curve(work, tokenizer, experts[i], rows, lambdas, batch_size)
        for i, rows in probes.items()
    }
    alone = {
        n: next(p["accuracy"] for p in c["points"] if p["lambda"] == 1.0) if 1.0 in lambdas else None
        for n, c in curves.items()
    }
    result: dict[str, Any] = {
        "kind": "audit",
        "experts": names,
        "expert_paths": [str(e.path) for e in experts],
        "probes": {names[i]: len(r) for i, r in probes.items()},
        "no_probes": [n for i, n in enumerate(names) if i not in probes],
        "alone": alone,
        "strength": {"lambdas": list(lambdas), "curves": list(curves.values())},
        "interference": {},
        "library": {},
        "geometry": {k: v for k, v in geometry(experts, density).items() if k != "modules"},
    }
    vocab = vocabularies(experts, probes)
    sorter = Sorter(vocab)
    result["answers"] = {
        "vocabulary": {n: len(v) for n, v in vocab.items()},
        "alone": _alone_on_others(pristine, tokenizer, experts, probes, sorter, batch_size),
        "library": {},
    }
    for spec in specs:
        result["interference"][spec.name] = _pairs(
            pristine, tokenizer, experts, probes, alone, spec.name, batch_size
        )
        whole, answers = _whole(pristine, tokenizer, experts, probes, spec.name, batch_size, sorter)
        result["library"][spec.name] = whole
        result["answers"]["library"][spec.name] = answers
    result["reading"] = reading(result)
    return result


def _pairs(
    pristine: Any,
    tokenizer: Any,
    experts: list[Expert],
    probes: dict[int, list[dict[str, Any]]],
    alone: dict[str, Any],
    method: str,
    batch: int,
) -> dict[str, Any]:
    names = [e.name for e in experts]
    n = len(experts)
    drop: list[list[float | None]] = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            rows = probes.get(i, []) + probes.get(j, [])
            if not rows:
                continue
            model = combine((copy.deepcopy(pristine), tokenizer), [experts[i], experts[j]], method)
            result = evaluate(
                model, tokenizer, rows, max_new_tokens(rows), batch, f"{method} {names[i]}+{names[j]}"
            )
            acc = _by_expert(rows, [r["correct"] for r in result.rows], names)
            for a, b in ((i, j), (j, i)):
                if names[a] in acc and alone.get(names[a]) is not None:
                    drop[a][b] = alone[names[a]] - acc[names[a]]
            del model
    values = [v for row in drop for v in row if v is not None]
    return {"drop": drop, "mean_drop": float(np.mean(values)) if values else None}


def _alone_on_others(
    pristine: Any,
    tokenizer: Any,
    experts: list[Expert],
    probes: dict[int, list[dict[str, Any]]],
    sorter: Sorter,
    batch: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per expert, alone at full strength on every other expert's probes: its answers sorted per owner."""
    names = [e.name for e in experts]
    out = {}
    for i, e in enumerate(experts):
        rows = [r for j in sorted(probes) if j != i for r in probes[j]]
        if not rows:
            continue
        model = combine((copy.deepcopy(pristine), tokenizer), [e], "uniform")
        result = evaluate(
            model, tokenizer, rows, max_new_tokens(rows), batch, f"{e.name} on the others' probes"
        )
        out[e.name] = tally(result.rows, [r["expert"] for r in rows], sorter, names)
        del model
    return out


def _whole(
    pristine: Any,
    tokenizer: Any,
    experts: list[Expert],
    probes: dict[int, list[dict[str, Any]]],
    method: str,
    batch: int,
    sorter: Sorter,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    names = [e.name for e in experts]
    rows = [r for i in sorted(probes) for r in probes[i]]
    model = combine((copy.deepcopy(pristine), tokenizer), experts, method)
    result = evaluate(model, tokenizer, rows, max_new_tokens(rows), batch, f"{method} whole library")
    out: dict[str, Any] = {"accuracy": _by_expert(rows, [r["correct"] for r in result.rows], names)}
    answers = tally(result.rows, [r["expert"] for r in rows], sorter, names)
    if get_method(method).kind == "router":
        index = {n: i for i, n in enumerate(names)}
        traced = [
            make_probe(tokenizer, r, o["output"], index[r["expert"]])
            for r, o in zip(rows, result.rows, strict=True)
        ]
        routing = trace(model, traced, names, heatmaps=0)
        acc = routing.get("accuracy", {})
        answer = routing["by_class"].get("answer") or {}
        out["routing"] = {
            "chance": acc.get("chance"),
            "owner_coefficient": acc.get("focus_tokens"),
            "owner_top1": acc.get("focus_tokens_top1"),
            "by_owner": {k: v.get("owner_coefficient") for k, v in acc.get("by_owner", {}).items()},
            "entropy_ratio": routing["by_class"]["focus"].get("entropy_ratio"),
            "answer_owner_top1": answer.get("owner_top1") if answer.get("tokens") else None,
        }
    return out, answers


def reading(result: dict[str, Any]) -> str:
    """One paragraph that says what the numbers mean."""
    alone = {k: v for k, v in result["alone"].items() if v is not None}
    names = result["experts"]
    parts = []
    if alone:
        low, high, mean = min(alone.values()), max(alone.values()), float(np.mean(list(alone.values())))
        parts.append(
            f"Alone, the {len(alone)} experts with probes answer their own held-out questions at "
            f"{low:.2f}-{high:.2f} (mean {mean:.2f})."
        )
    for method, inter in result["interference"].items():
        if inter["mean_drop"] is None:
            continue
        cells = [(v, i, j) for i, row in enumerate(inter["drop"]) for j, v in enumerate(row) if v is not None]
        v, i, j = max(cells)
        parts.append(
            f"Combined in pairs by {method}, an expert loses {inter['mean_drop']:.2f} of its accuracy on "
            f"average (worst: {names[i]} beside {names[j]}, {v:+.2f})."
        )
    pairs = [(_at(c, 0.5), _at(c, 1.0)) for c in result["strength"]["curves"]]
    ratios = [h / a for h, a in pairs if h is not None and a]
    if ratios:
        kept = float(np.mean(ratios))
        cause = (
            "dilution alone explains much of a Uniform merge's loss"
            if kept < 0.5
            else "dilution is not the main cost"
        )
        parts.append(
            f"At half strength (what a two-expert Uniform merge gives each) the experts keep {kept:.2f} of "
            f"their accuracy: {cause}."
        )
    parts += _push_reading(result["strength"]["curves"])
    for method, whole in result["library"].items():
        r = whole.get("routing")
        if r and r.get("owner_coefficient") is not None:
            parts.append(
                f"With all {len(names)} experts, {method} gives the owner {r['owner_coefficient']:.2f} of the "
                f"weight (chance {r['chance']:.2f}; entropy {r['entropy_ratio']:.2f} of max)"
                + (
                    f"; at the tokens of the gold answer the owner is its top choice {top1:.2f} of the time."
                    if (top1 := r.get("answer_owner_top1")) is not None
                    else "."
                )
            )
    parts += _answers_reading(result.get("answers"), len(names))
    s = result["geometry"].get("summary") or {}
    if s.get("prototype_abs_cos") is not None:
        parts.append(
            f"The experts' prototypes have mean |cos| {s['prototype_abs_cos']:.2f}, their deltas mean cosine "
            f"{s['delta_cos']:+.2f}, and their input subspaces a mean principal angle of "
            f"{np.degrees(s['input_angle_mean']):.0f} degrees."
        )
    if result["no_probes"]:
        parts.append(
            f"No probes for {', '.join(result['no_probes'])}: they are left out of the accuracy numbers."
        )
    return " ".join(parts)


def _push_reading(curves: Sequence[dict[str, Any]]) -> list[str]:
    """The margin sentence: how far each expert pushes its gold answer against the base's own preference."""
    found = [(c, p) for c in curves if (p := push(c)) is not None]
    if not found:
        return []
    base = float(np.mean([p["base"] for _, p in found]))
    pushed = float(np.mean([p["push"] for _, p in found]))
    ratios = [p["ratio"] for _, p in found if p["ratio"] is not None]
    sizes = [c["delta_size"] for c, _ in found if c.get("delta_size") is not None]
    edit = (
        f"; their deltas are {100 * float(np.mean(sizes)):.1f}% of the weights they change" if sizes else ""
    )
    text = (
        f"Teacher-forced on their reference answers, the base's margin for the gold answer's first token is "
        f"{base:+.2f} logits on average and the experts alone raise it by {pushed:.2f}{edit}."
    )
    if ratios:
        text += (
            f" The push is {min(ratios):.2f}-{max(ratios):.2f} times the base's preference against the gold "
            f"(over the {len(ratios)} expert(s) whose base prefers another token): where the margin moves "
            "linearly with lambda, an expert holds at strength 1/E only where that ratio exceeds E (2 for a "
            "two-expert Uniform merge)."
        )
    return [text]


def _answers_reading(answers: dict[str, Any] | None, experts: int) -> list[str]:
    """The interference sentence: the largest share of one expert's questions that a whole-library
    combination answers with another expert's answers, beside what that expert gives alone."""
    if not answers or not answers.get("library"):
        return []
    best = strongest(answers)
    if best is None:
        return ["No whole-library combination answers an expert's questions with another expert's answers."]
    alone = (
        f" (alone, {best['by']} gives one of its answers to {best['alone']:.2f} of them)"
        if best["alone"] is not None
        else ""
    )
    return [
        f"Under {best['method']} with all {experts} experts, {best['share']:.2f} of {best['owner']}'s questions "
        f"({best['count']} of {best['n']}) are answered with one of {best['by']}'s answers{alone}: in the "
        f"combination, {best['by']}'s edit answers questions that are not its own."
    ]


def _at(curve: dict[str, Any], lam: float) -> float | None:
    return next((p["accuracy"] for p in curve["points"] if p["lambda"] == lam), None)


def render_audit(result: dict[str, Any]) -> str:
    """The audit as one HTML page (interference heatmaps per method, tables)."""
    names = result["experts"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>loralab audit</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>loralab audit</h1>",
        f"<p>{result['reading']}</p>",
    ]
    parts.append(
        table(
            ["expert", "probes", "alone", *(f"whole library: {m}" for m in result["library"])],
            [
                [
                    n,
                    result["probes"].get(n),
                    result["alone"].get(n),
                    *(w["accuracy"].get(n) for w in result["library"].values()),
                ]
                for n in names
            ],
        )
    )
    for method, inter in result["interference"].items():
        grid = [[abs(v) if v is not None else 0.0 for v in row] for row in inter["drop"]]
        parts.append(f"<h2>Interference: {method}</h2>")
        parts.append(
            table(["expert \\ beside", *names], [[names[i], *row] for i, row in enumerate(inter["drop"])])
        )
        parts.append(
            heatmap_png(
                grid,
                names,
                names,
                f"{method}: accuracy lost by the row expert beside the column expert (|drop|)",
            )
        )
    parts.append("<h2>Strength curves</h2>")
    parts.append(
        table(
            ["expert", *(f"lambda {x}" for x in result["strength"]["lambdas"])],
            [[c["expert"], *(p["accuracy"] for p in c["points"])] for c in result["strength"]["curves"]],
        )
    )
    parts += margin_table(result["strength"])
    parts += _answers_html(result.get("answers") or {}, names)
    pairs = result["geometry"]["pairs"]
    parts.append("<h2>Geometry</h2>")
    parts.append(
        table(
            ["expert", "expert", "prototype |cos|", "delta cos", "input angle (deg)", "sign conflict"],
            [
                [
                    *p["experts"],
                    p.get("prototype_abs_cos"),
                    p.get("delta_cos"),
                    p.get("input_angle_mean_deg"),
                    p.get("sign_conflict"),
                ]
                for p in pairs.values()
            ],
        )
    )
    return "\n".join([*parts, "</body></html>"]) + "\n"


def _answers_html(answers: dict[str, Any], names: Sequence[str]) -> list[str]:
    """The audit page's whose-answers section (none when the audit has no whole-library answers)."""
    if not answers.get("library"):
        return []
    parts = [
        "<h2>Whose answers</h2>",
        "<p class=\"note\">Share of each expert's probes answered with the gold, another of the owner's "
        "answers, one of each other expert's answers (the columns named after the experts), or none of "
        "these (answers.py says how they are sorted).</p>",
    ]
    for method, counts in answers["library"].items():
        parts.append(f"<h3>{escape(method)}, all experts</h3>")
        parts.append(table(answer_header(names), answer_rows(counts, names)))
    parts.append("<h3>Each expert alone on the others' probes: share answered with its answers</h3>")
    parts.append(table(["expert \\ questions of", *names], alone_rows(answers.get("alone") or {}, names)))
    return parts


def write_audit(result: dict[str, Any], out: Path | str, overwrite: bool = False) -> Path:
    """audit.json, audit.html and reading.txt into folder `out` (written whole, then renamed; an existing `out`
    is replaced only with `overwrite` and only if it holds nothing else)."""
    out = Path(out)
    check_replaceable(out, "--out", OUTPUTS, "an audit")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        tmp.chmod(0o755)
        write_json(tmp / AUDIT, {**result, "provenance": provenance()})
        (tmp / "audit.html").write_text(render_audit(result))
        (tmp / "reading.txt").write_text(result["reading"] + "\n")
    return out
