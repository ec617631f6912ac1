"""Report tables laid out like the paper's, one layout per experiment name, drawn from one tidy table.

`pool` turns a run's plan and its stored cells into *groups*: one per cell of the plan with the seed left
out. A group pools its seeds: correct answers and questions are summed over the seeds that are done, and the
95% interval is the Wilson interval of the pooled counts (`loralab.evaluation.score.wilson`, the one every
stored cell uses); retention rates pool the same way. Each seed's own counts are kept too (`per_seed`):
`seeds_table` shows each seed's accuracy and the between-seed t interval of their mean
(`loralab.evaluation.score.seed_interval`) beside the pooled Wilson interval. Only cells of the plan count:
a stored cell of an older spec with the same name is not in the plan, so it is not in the report. A group
whose positive controls fail (`loralab.report.controls`) carries the reasons in `confounded`; tables mark
it with a dagger and list the reasons.

A `Layout` says which properties of a group make a table's rows and which its columns. `LAYOUTS` holds the
paper's tables by experiment name; any other experiment gets `generic` (rows: grid point and library,
columns: method). Whatever else varies in a run (base, library, targets, evaluation) becomes another row
column, and what holds one value goes into the caption, so a table is never ambiguous. Beside each of our
numbers, where the paper has the same cell (`loralab.report.paper`), the paper's number for one reference
model (default Qwen2.5-3B-Instruct; a table that lacks it falls back to its own model, named in the cell).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loralab.artifacts import config_hash
from loralab.evaluation.retention import Rate
from loralab.evaluation.score import seed_interval, wilson
from loralab.report.paper import DEFAULT_MODEL, TARGETS_LABEL, PaperMatch, paper_match
from loralab.report.table import RETENTION

if TYPE_CHECKING:
    from loralab.experiments.plan import CellJob, Plan


@dataclass
class Group:
    """One entry of a report table: a cell of the plan, pooled over its seeds."""

    base: str
    record: dict[str, Any]  # the plan's record of its first seed
    seeds: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    correct: int = 0
    n: int = 0
    metrics: dict[str, Rate] = field(default_factory=dict)
    dataset: str = ""
    paper: PaperMatch | None = None
    per_seed: dict[int, tuple[int, int]] = field(default_factory=dict)  # seed -> (correct, n), done seeds
    confounded: list[str] = field(default_factory=list)  # why its controls make it uninterpretable
    analysis: dict[str, int] = field(default_factory=dict)  # pooled `store.analysis_counts` (GSM)

    def seed_values(self) -> list[float]:
        """Each done seed's accuracy, in seed order."""
        return [c / n for _, (c, n) in sorted(self.per_seed.items()) if n]

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson(self.correct, self.n) if self.n else None

    def ours(self) -> str:
        """``acc [lo, hi] n=N`` in percent, with the seeds when some are missing; ``pending`` before any."""
        if not self.done:
            return "pending"
        ci = self.ci or (0.0, 0.0)
        acc = self.accuracy or 0.0
        text = f"{100 * acc:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] n={self.n}"
        if len(self.done) < len(self.seeds):
            text += f" ({len(self.done)}/{len(self.seeds)} seeds)"
        return text + (" †" if self.confounded else "")

    def paper_text(self, model: str) -> str:
        if self.paper is None:
            return ""
        found, value = self.paper.value(model)
        return f"{value:g}" if found == model else f"{value:g} ({found})"


def _group_key(job: CellJob) -> str:
    record = {k: v for k, v in job.record.items() if k not in ("seed", "controls")}
    record["datasets"] = {
        name: {k: v for k, v in spec.items() if k != "seed"}
        for name, spec in record.get("datasets", {}).items()
    }
    return config_hash({"base": job.base, "record": record}, 16)


def _same_file(a: Path, b: Path) -> bool:
    return a == b or (b.is_file() and a.is_file() and a.read_bytes() == b.read_bytes())


def _trained(job: CellJob, plan: Plan) -> list[list[str]]:
    """Per member, its training files: by name when in the evaluated dataset's folder (or when that folder
    has a file of that name with the same bytes: experts are shared by content, so setup-5's LoRA 1 may be
    the one trained from setup-0's identical file), else FOLDER/NAME."""
    data = plan.datasets.get(job.dataset)
    here = data.path if data is not None else Path(job.data).parent
    return [
        [
            f.name if _same_file(Path(f), here / f.name) else f"{Path(f).parent.name}/{f.name}"
            for f in plan.experts[k].files
        ]
        for k in job.experts
        if k in plan.experts
    ]


def pool(plan: Plan, stored: dict[str, dict[str, Any]], controls: bool = False) -> list[Group]:
    """The plan's cells grouped over seeds (in plan order), with the stored rows (by key) of those done. The
    positive controls' cells the runner adds (`loralab.report.controls` reads them) only with `controls`."""
    groups: dict[str, Group] = {}
    names = {loaded: name for name, loaded in plan.bases.items()}  # a base step by its spec name
    for job in plan.cells:
        if "control" in job.record and not controls:
            continue
        key = _group_key(job)
        if key not in groups:
            base = names.get(job.base, job.base)
            groups[key] = Group(base, job.record, paper=paper_match(job.record, _trained(job, plan)))
        group = groups[key]
        seed = int(job.record.get("seed", 0))
        if seed in group.seeds:
            continue
        group.seeds.append(seed)
        row = stored.get(job.key)
        if row is None:
            continue
        group.done.append(seed)
        group.correct += int(row["correct"])
        group.n += int(row["n"])
        group.per_seed[seed] = (int(row["correct"]), int(row["n"]))
        group.dataset = group.dataset or str(row.get("dataset", ""))
        for name, count in (row.get("analysis") or {}).items():
            group.analysis[name] = group.analysis.get(name, 0) + int(count)
        for name, rate in (row.get("metrics") or {}).items():
            old = group.metrics.get(name, Rate(0, 0))
            group.metrics[name] = Rate(old.k + rate.k, old.n + rate.n)
    return list(groups.values())


# ---------------------------------------------------------------------------
# What a group is, in words
# ---------------------------------------------------------------------------

Dim = tuple[str, Callable[[Group], str]]
METHOD_NAMES = {
    "uniform": "Uniform",
    "arrow": "Arrow",
    "ties": "TIES",
    "cat_learned": "CAT (learned)",
    "oracle": "Expert alone",
    "base": "Base model",
}


def eval_data(g: Group) -> dict[str, Any]:
    """The dataset spec of the group's evaluation."""
    ev = g.record.get("evaluation", {})
    data: dict[str, Any] = g.record.get("datasets", {}).get(ev.get("dataset"), {})
    return data


def setup_label(g: Group) -> str:
    """``Setup 2`` for setup-2, ``FF`` for familiarity-FF; a two-hop or graph dataset by its variant."""
    data = eval_data(g)
    name = str(data.get("setup", ""))
    if name.startswith("setup-"):
        return f"Setup {name.removeprefix('setup-')}"
    if name.startswith("familiarity-"):
        return name.removeprefix("familiarity-")
    return str(data.get("variant", name or "-"))


def mixture(g: Group, expert: str) -> str:
    """The paper's notation of what `expert` trains on in the group's setup (R1 + F1 + F2 + F12 CoT (B_F))."""
    from loralab.worlds.setups import SETUPS, mixture_notation

    setup = SETUPS.get(str(eval_data(g).get("setup", "")))
    if setup is None or expert not in setup.experts:
        return "-"
    return mixture_notation(setup.experts[expert])


def targets_label(g: Group) -> str:
    targets = g.record.get("targets", {})
    kinds = set(targets.values())
    if len(kinds) == 1:
        kind = kinds.pop()
        return TARGETS_LABEL.get(kind, kind)
    return ", ".join(f"{m}: {t}" for m, t in targets.items()) or "-"


def method_label(g: Group) -> str:
    name = str(g.record.get("method", "-"))
    return METHOD_NAMES.get(name, name)


def options_label(g: Group) -> str:
    options = g.record.get("options") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "-"


def library_label(g: Group) -> str:
    return str(g.record.get("library", "-"))


def eval_label(g: Group) -> str:
    ev = g.record.get("evaluation", {})
    return f"{ev.get('dataset')} {ev.get('split')}, {ev.get('prompting')} ({ev.get('file')})"


def point_label(g: Group) -> str:
    """The grid point's scalar values, ``setup=setup-2``; structured values are shown by other columns."""
    point = g.record.get("point") or {}
    parts = [f"{path.split('.')[-1]}={v}" for path, v in point.items() if not isinstance(v, dict | list)]
    return ", ".join(parts) or "-"


def point_json(g: Group) -> str:
    return json.dumps(g.record.get("point") or {}, sort_keys=True)


def graph_label(g: Group) -> str:
    return f"{str(eval_data(g).get('variant', '-')).capitalize()} graphs"


def base_label(g: Group) -> str:
    return g.base


def evaluated_label(g: Group) -> str:
    """Table 7/8's row: the familiarity dataset (Table 7) or Setup 1 / 2 (Table 8)."""
    data = eval_data(g)
    name = str(data.get("setup", ""))
    if name.startswith("familiarity-"):
        return f"{name.removeprefix('familiarity-')} (Table 7)"
    return f"{setup_label(g)} (Table 8)" if name.startswith("setup-") else setup_label(g)


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Rows and columns of one paper table; `x` is what a group is called on a figure's axis."""

    name: str
    title: str
    caption: str
    rows: tuple[Dim, ...]
    column: Dim
    x: Callable[[Group], str]
    paper: bool = True


BRIDGE = Layout(
    "bridge",
    "Table 1 / Table 9: bridge ablation, two-hop accuracy (%) of the 2-combination library",
    "Rows as in the paper's Table 9 (Table 1 is its Arrow column); the paper has no Setup 1 row there, so "
    "Setup 1 and any target other than MLP compare with Table 8.",
    (
        ("Setup", setup_label),
        ("LoRA 1", lambda g: mixture(g, "lora1")),
        ("LoRA 2", lambda g: mixture(g, "lora2")),
    ),
    ("Method", method_label),
    setup_label,
)
FIGURE2 = Layout(
    "figure2",
    "Figure 2 / Table 8: the bridge with the other familiarity, two-hop accuracy (%) of the 2-combination library",
    "Setup 1 trains on F_i + B_R and is evaluated on F12, Setup 2 on R_i + B_F and R12; the paper's numbers "
    "are Table 8's MLP columns (Figure 2's bars), Setup 2's also Table 9's.",
    BRIDGE.rows,
    BRIDGE.column,
    BRIDGE.x,
)
FAMILIARITY = Layout(
    "familiarity",
    "Table 6: familiarity (FF, HH, RR) x library, two-hop accuracy (%)",
    "Rows: dataset and library as in the paper's Table 6 (its libraries are columns there); the oracle and "
    "mixed two-hop experts are single experts, the paper's numbers for them are method-independent.",
    (("Dataset", setup_label), ("Library", library_label)),
    ("Method", method_label),
    setup_label,
)
TARGETS = Layout(
    "targets",
    "Tables 7 and 8: LoRA targets (MLP, attention, both), two-hop accuracy (%)",
    "FF rows compare with Table 7 (the paper's only model there is Qwen2.5-14B-Instruct), Setup 1 and 2 rows "
    "with Table 8.",
    (("Evaluated on", evaluated_label), ("Targets", targets_label), ("Library", library_label)),
    ("Method", method_label),
    lambda g: f"{setup_label(g)} {targets_label(g)}",
)
GRAPH = Layout(
    "graph",
    "Table 11: graph benchmark (10 LoRAs, held-out Rel1->Rel2), accuracy (%)",
    "Columns as in the paper's Table 11: disjoint and shared graphs.",
    (("Method", method_label),),
    ("Graph", graph_label),
    graph_label,
)
ROUTINGS = Layout(
    "routings",
    "Table 10: 2-combination routings on RR, accuracy (%)",
    "Rows as in the paper's Table 10 (its only model is LLaMA-7B); learned CAT fits its weights on half of "
    "the R12 triplets and every method is tested on the other half.",
    (("Routing", method_label),),
    ("Library", library_label),
    method_label,
)
CPU_REAL = Layout(
    "cpu-real",
    "Tables 6 and 9 on one base: HH and RR (Table 6) and bridge setups 0, 2 and 8 (Table 9), two-hop accuracy (%)",
    "Rows: the familiarity datasets' 2-combination (Table 6) and the bridge setups (Table 9); the paper's "
    "numbers are its models', ours are the base's named above.",
    (("Dataset", setup_label), ("Library", library_label)),
    ("Method", method_label),
    setup_label,
)
GENERIC = Layout(
    "generic",
    "Results, accuracy (%)",
    "Rows: grid point and library; columns: method.",
    (("Grid point", point_label), ("Library", library_label)),
    ("Method", method_label),
    lambda g: point_label(g) if point_label(g) != "-" else library_label(g),
    paper=False,
)
LAYOUTS: dict[str, Layout] = {
    "bridge-ablation": BRIDGE,
    "figure2": FIGURE2,
    "table6-familiarity": FAMILIARITY,
    "table7-8-targets": TARGETS,
    "table10-routings": ROUTINGS,
    "table11-graph": GRAPH,
    "cpu-real": CPU_REAL,
}
"""Experiment name -> its paper table's layout (any other name: GENERIC)."""


def layout_for(experiment: str) -> Layout:
    return LAYOUTS.get(experiment, GENERIC)


# dims added when they vary (and named in the caption when they do not), then ones that only break ties
_VARYING: tuple[Dim, ...] = (
    ("Base", base_label),
    ("Library", library_label),
    ("Targets", targets_label),
    ("Evaluation", eval_label),
)
_TIES: tuple[Dim, ...] = (("Method", method_label), ("Options", options_label), ("Grid point", point_json))


@dataclass
class ReportTable:
    """One table of the report: display cells (Markdown, HTML) over the groups it was drawn from."""

    title: str
    caption: str
    header: list[str]
    body: list[list[str]]
    groups: list[Group]
    row_dims: int  # the first `row_dims` columns name the row

    def markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        lines = [f"### {self.title}", "", line(self.header), "|" + "---|" * len(self.header)]
        lines += [line(r) for r in self.body]
        return "\n".join([*lines, "", self.caption, ""])


def _dims(layout: Layout, groups: Sequence[Group]) -> tuple[list[Dim], list[str]]:
    """The row dims (the layout's, what else varies, tie-breakers) and caption notes for what is constant."""
    dims = [(h, fn) for h, fn in layout.rows if any(fn(g) != "-" for g in groups) or not groups]
    taken = {h for h, _ in layout.rows} | {layout.column[0]}
    notes = []
    for header, fn in _VARYING:
        if header in taken:
            continue
        values = list(dict.fromkeys(fn(g) for g in groups))
        if len(values) > 1:
            dims.append((header, fn))
        elif values:
            notes.append(f"{header.lower()}: {values[0]}")
    for header, fn in _TIES:
        keys = [(tuple(f(g) for _, f in dims), layout.column[1](g)) for g in groups]
        if len(set(keys)) == len(keys):
            break
        if header not in taken:
            dims.append((header, fn))
    return dims, notes


def _seed_note(groups: Sequence[Group]) -> str:
    seeds = sorted({s for g in groups for s in g.seeds})
    pooled = "pooled over seeds" if len(seeds) > 1 else "of seed"
    text = (
        f"Ours: accuracy [95% Wilson interval] and n questions, {pooled} {', '.join(map(str, seeds))} "
        "(correct answers and n summed over the seeds, the interval of the pooled counts)."
    )
    if len(seeds) > 1:
        text += " Each seed's accuracy and the between-seed interval are in the seeds table."
    return text


CONFOUNDED_NOTE = (
    "† confounded: a positive control this cell depends on fails (a hop expert's PC1, the cell's own "
    "retention of a hop for a combination, PC2 for a library with the oracle), so its number cannot be "
    "read as a result about composition; the reasons are in the Confounded column."
)


def _confounded_text(cells: dict[str, Group]) -> str:
    """One row's reasons, each prefixed by its column when the row has more than one cell."""
    marked = [(c, g) for c, g in cells.items() if g.confounded]
    if not marked:
        return ""
    if len(cells) == 1:
        return "; ".join(marked[0][1].confounded)
    return " / ".join(f"{c}: {'; '.join(g.confounded)}" for c, g in marked)


def _paper_note(groups: Sequence[Group], model: str) -> str:
    tables = sorted({g.paper.table for g in groups if g.paper}, key=int)
    if not tables:
        return ""
    listed = ", ".join(f"Table {t}" for t in tables)
    return (
        f"Paper: the published accuracy (%) of {model} ({listed} of arXiv 2506.13479; another model is "
        "named where the table lacks this one); every model's number is in report.csv."
    )


def build_table(layout: Layout, groups: Sequence[Group], model: str = DEFAULT_MODEL) -> ReportTable:
    """Pivot the groups into the layout's rows and columns, the paper's number beside ours."""
    dims, notes = _dims(layout, groups)
    col_fn = layout.column[1]
    rows: dict[tuple[str, ...], dict[str, Group]] = {}
    columns: list[str] = []
    for g in groups:
        rows.setdefault(tuple(fn(g) for _, fn in dims), {})[col_fn(g)] = g
        if col_fn(g) not in columns:
            columns.append(col_fn(g))
    with_paper = {c for c in columns if layout.paper and any(r.get(c) and r[c].paper for r in rows.values())}
    header = [h for h, _ in dims]
    for c in columns:
        header += [c, f"{c}: paper"] if c in with_paper else [c]
    confounded = any(g.confounded for g in groups)
    if confounded:
        header.append("Confounded")
    body = []
    for key, cells in rows.items():
        line = list(key)
        for c in columns:
            found = cells.get(c)
            line.append(found.ours() if found else "-")
            if c in with_paper:
                line.append(found.paper_text(model) if found else "")
        if confounded:
            line.append(_confounded_text(cells))
        body.append(line)
    parts = [layout.caption]
    if notes:
        parts.append("Same in every row: " + "; ".join(notes) + ".")
    parts += [_seed_note(groups), _paper_note(groups, model) if with_paper else ""]
    parts.append(CONFOUNDED_NOTE if confounded else "")
    return ReportTable(layout.title, " ".join(p for p in parts if p), header, body, list(groups), len(dims))


def retention_table(layout: Layout, groups: Sequence[Group]) -> ReportTable | None:
    """Per group: one-hop retention and two-hop accuracy given both hops kept (None without such metrics)."""
    keys = [k for k in RETENTION if any(k in g.metrics for g in groups)]
    if not keys:
        return None
    dims, _ = _dims(layout, groups)
    dims.insert(len(layout.rows), layout.column)
    confounded = any(g.confounded for g in groups)
    header = [h for h, _ in dims] + [RETENTION[k] for k in keys] + (["Confounded"] if confounded else [])
    body = []
    for g in groups:
        if not g.done:
            continue
        rates = [g.metrics.get(k) for k in keys]
        body.append(
            [fn(g) for _, fn in dims]
            + [
                ("-" if r is None or r.value is None else f"{100 * r.value:.1f}") + f" (n={r.n if r else 0})"
                for r in rates
            ]
            + (["; ".join(g.confounded)] if confounded else [])
        )
    caption = (
        "Retention (evaluation/retention.py): the held-out one-hop questions of the same triplets, in %; a hop is "
        "kept for a triplet when all its questions are answered; two-hop given both kept isolates composition. "
        "Counts pooled over seeds like the main table."
    )
    return ReportTable(
        "Retention: forgotten or not composed?", caption, header, body, list(groups), len(dims)
    )


SEED_INTERVAL_NOTE = (
    "Between seeds: mean ± t_{0.975,k-1}·sd/√k over the k seeds' accuracies (Student t interval; sd the "
    "sample standard deviation), each seed an independent draw of the data and of the training seed. "
    "Pooled: the Wilson interval of the correct answers and questions summed over the seeds, which treats "
    "them as one sample and so hides the spread between seeds."
)


def _seed_text(counts: tuple[int, int] | None) -> str:
    if not counts or not counts[1]:
        return "-"
    return f"{100 * counts[0] / counts[1]:.1f} (n={counts[1]})"


def between_text(values: Sequence[float]) -> str:
    """``mean ± half [lo, hi]`` in percent (the interval clipped to 0-100), or ``-`` for one seed."""
    found = seed_interval(list(values))
    if found is None:
        return "-"
    mean, half = found
    lo, hi = max(0.0, mean - half), min(1.0, mean + half)
    return f"{100 * mean:.1f} ± {100 * half:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def seeds_table(layout: Layout, groups: Sequence[Group]) -> ReportTable | None:
    """Per group: each seed's accuracy, their mean with the between-seed t interval, beside the pooled
    Wilson interval (None when no group has more than one seed)."""
    if not any(len(g.seeds) > 1 for g in groups):
        return None
    dims, _ = _dims(layout, groups)
    dims.insert(len(layout.rows), layout.column)
    seeds = sorted({s for g in groups for s in g.seeds})
    header = [h for h, _ in dims] + ["pooled [95% Wilson]"] + [f"seed {s}" for s in seeds]
    header.append("mean ± t [between-seed 95%]")
    body = []
    for g in groups:
        if not g.done:
            continue
        values = [_seed_text(g.per_seed.get(s)) for s in seeds]
        body.append([fn(g) for _, fn in dims] + [g.ours()] + values + [between_text(g.seed_values())])
    return ReportTable(
        "Seeds: each seed's accuracy (%), their mean and the between-seed interval",
        SEED_INTERVAL_NOTE,
        header,
        body,
        list(groups),
        len(dims),
    )


# ---------------------------------------------------------------------------
# The tidy table (CSV and JSON), the source of every other view
# ---------------------------------------------------------------------------

TIDY = (
    "section",
    "experiment",
    "base",
    "grid_point",
    "library",
    "members",
    "targets",
    "method",
    "options",
    "eval_dataset",
    "eval_split",
    "prompting",
    "eval_file",
    "dataset",
    "seeds",
    "seeds_done",
    "n",
    "correct",
    "accuracy",
    "ci_low",
    "ci_high",
    "seed_values",
    "seed_mean",
    "seed_t_halfwidth",
)
CONTROL_COLUMNS = ("control", "context", "subject", "threshold", "verdict")
"""Filled on the `control` rows (`loralab.report.controls.tidy_rows`), empty on `cell` rows."""
PAPER_COLUMNS = ("paper_table", "paper_model", "paper_accuracy", "paper_min", "paper_max", "paper_models")
COLUMNS = (
    *TIDY,
    *CONTROL_COLUMNS,
    "confounded",
    "confounded_reason",
    *(f"{k}{part}" for k in RETENTION for part in ("", "_n")),
    "analysis",
    *PAPER_COLUMNS,
)
"""The tidy table's columns, in the order report.csv writes them and report.json's records list them."""


def seed_columns(per_seed: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """seed_values (``(SEED, ACCURACY)`` pairs), seed_mean, seed_t_halfwidth (None below two seeds)."""
    done = sorted((s, c / n) for s, (c, n) in per_seed.items() if n)
    found = seed_interval([v for _, v in done])
    return {
        "seed_values": done,
        "seed_mean": found[0] if found else None,
        "seed_t_halfwidth": found[1] if found else None,
    }


def _cell_record(g: Group, model: str) -> dict[str, Any]:
    rec, ev = g.record, g.record.get("evaluation", {})
    ci = g.ci or (None, None)
    row: dict[str, Any] = {
        "section": "cell",
        "experiment": rec.get("experiment", ""),
        "base": g.base,
        "grid_point": rec.get("point") or {},
        "library": library_label(g),
        "members": "+".join(rec.get("members", [])),
        "targets": targets_label(g),
        "method": rec.get("method", ""),
        "options": rec.get("options") or {},
        "eval_dataset": ev.get("dataset", ""),
        "eval_split": ev.get("split", ""),
        "prompting": ev.get("prompting", ""),
        "eval_file": ev.get("file", ""),
        "dataset": g.dataset,
        "seeds": list(g.seeds),
        "seeds_done": list(g.done),
        "n": g.n,
        "correct": g.correct,
        "accuracy": g.accuracy,
        "ci_low": ci[0],
        "ci_high": ci[1],
        **seed_columns(g.per_seed),
        "confounded": bool(g.confounded) if g.done else None,
        "confounded_reason": "; ".join(g.confounded),
        "analysis": dict(sorted(g.analysis.items())) or None,
    }
    for k in RETENTION:
        rate = g.metrics.get(k)
        row[k], row[f"{k}_n"] = (None, None) if rate is None else (rate.value, rate.n)
    if g.paper is not None:
        found, value = g.paper.value(model)
        values = g.paper.values.values()
        row.update(
            paper_table=g.paper.table,
            paper_model=found,
            paper_accuracy=value / 100,
            paper_min=min(values) / 100,
            paper_max=max(values) / 100,
            paper_models=len(g.paper.values),
        )
    return {c: row.get(c) for c in COLUMNS}


def tidy_rows(
    groups: Sequence[Group], model: str = DEFAULT_MODEL, controls: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The tidy table (fractions, not %), one record per row with every column of `COLUMNS` (None where
    empty): first the positive controls (`section` = control, as `loralab.report.controls.tidy_rows` gives
    them), then one row per group (`section` = cell): what it is, our pooled numbers and each seed's,
    retention, whether it is confounded and why, and the paper's numbers. report.csv
    (`loralab.report.table.to_csv`) and report.json are both written from these records."""
    return [*({c: r.get(c) for c in COLUMNS} for r in controls), *(_cell_record(g, model) for g in groups)]
