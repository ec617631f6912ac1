"""The positive controls of a run's two-hop libraries, their verdicts, and the cells they confound.

A negative result means something only when its positive controls pass. Each expert has a role (its spec's
`role:`, else inferred from its training files, `loralab.experiments.spec.role_of`): hop1 (A->B), hop2
(B->C), oracle (A->C), mixed (A->B and B->C in one adapter) or none. For every two-hop cell the runner
also evaluates each member with a role alone on its own held-out split (`control_cells`); from those cells
and the libraries' own cells:

- PC1: each hop1/hop2 expert alone on its own one-hop held-out test split (ab.test / bc.test). Threshold 95%.
- PC2: the oracle (trained on A->C alone) alone on the A->C held-out test, in the form it trained on: ac_cot
  for an oracle trained on the CoT form (controls.yaml, the familiarity setups: libraries are asked with CoT
  prompting, and CoT scoring needs the chain, so a direct oracle scores 0% there), ac for one trained on
  direct answers. Threshold 90%.
- PC3: the 3-combination library (hop1+hop2+oracle) under Arrow on the two-hop test. Threshold 70% when
  the evaluated variant is RR or a graph; on HH and FF the value is reported with no threshold (that is the
  familiarity claim itself).
- PC4: the 2-combination library's (hop1+hop2) retention of each hop (the retention columns of its two-hop
  cell), per method. Threshold 80% for each hop.
- PC5: the mixed expert alone on both hops' held-out one-hop tests. Threshold 90%.

Each control has a value, its 95% Wilson interval and n (counts pooled over the seeds done, like every
table), each seed's value, and a verdict: pass (point estimate >= threshold), fail, not measured (the run
has no such expert or library, or its cells are pending) or too few questions (n < 20). A library without
an oracle or a mixed expert makes those controls "not measured", never a failure.

A graph library (Table 11) evaluated on a composition RelX->RelY gets the same controls, its experts' roles
read relative to that composition (`loralab.experiments.spec.graph_hops`): the RelX expert is hop1, the RelY
expert hop2, an expert trained on RelX->RelY alone the oracle; PC1 asks relX.test and relY.test, and
retention asks the RelX questions about each test question's subject and the RelY questions about its middle
entity (`loralab.evaluation.retention.retention_sets`). The composition experts of other pairs have no role.

A cell is *confounded* when a control it depends on fails: any of its hop1/hop2 experts fails PC1, or (for
a combination cell) its own retention of either hop is below 80%, or (for a 3-combination cell) PC2 fails.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loralab.artifacts import config_hash
from loralab.evaluation.score import wilson
from loralab.report.layouts import (
    Group,
    ReportTable,
    between_text,
    method_label,
    point_label,
    seed_columns,
    setup_label,
)

if TYPE_CHECKING:
    from loralab.experiments.plan import CellJob, Plan

THRESHOLDS = {"PC1": 0.95, "PC2": 0.90, "PC3": 0.70, "PC4": 0.80, "PC5": 0.90}
MIN_N = 20
WHAT = {
    "PC1": "each hop1/hop2 expert alone on its own one-hop held-out test split",
    "PC2": "the oracle alone on the A->C held-out test",
    "PC3": "the 3-combination library (hop1+hop2+oracle) under Arrow on the two-hop test",
    "PC4": "the 2-combination library (hop1+hop2): retention of each hop, per method",
    "PC5": "the mixed expert alone on both hops' held-out one-hop tests",
}
ABSENT = {
    "PC1": "no hop1 or hop2 expert in a two-hop library",
    "PC2": "no oracle expert in a two-hop library",
    "PC3": "no library of hop1 + hop2 + oracle evaluated under Arrow",
    "PC4": "no library of hop1 + hop2 (without oracle or mixed expert)",
    "PC5": "no mixed expert in a two-hop library",
}
ROLE_CONTROL = {"hop1": "PC1", "hop2": "PC1", "oracle": "PC2", "mixed": "PC5"}
TASK_LABEL = {"ab": "A→B", "bc": "B→C", "ac": "A→C", "ac_cot": "A→C (CoT)"}
NOT_MEASURED = "not measured"
TOO_FEW = "too few questions (n<20)"
NO_THRESHOLD = "reported, no threshold: this is the familiarity claim itself"
OLD_PLAN = "the plan predates the controls: rerun `loralab run` on the spec to add them"


def verdict(k: int, n: int, threshold: float | None) -> str:
    """pass / fail against `threshold` (the point estimate k/n >= threshold passes), not measured for n = 0,
    too few questions for n < 20, reported for no threshold."""
    if n == 0:
        return NOT_MEASURED
    if n < MIN_N:
        return TOO_FEW
    if threshold is None:
        return NO_THRESHOLD
    return "pass" if k >= threshold * n - 1e-9 else "fail"


@dataclass
class ControlResult:
    """One control of one context (base, grid point, evaluated dataset), pooled over its seeds."""

    name: str  # PC1 .. PC5
    context: str
    subject: str
    threshold: float | None
    context_key: str = ""
    record: dict[str, Any] = field(default_factory=dict)  # the first cell's record it was read from
    planned: list[int] = field(default_factory=list)  # seeds
    counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # seed -> (correct, n), done seeds
    why: str = ""  # why not measured

    @property
    def k(self) -> int:
        return sum(c for c, _ in self.counts.values())

    @property
    def n(self) -> int:
        return sum(n for _, n in self.counts.values())

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def verdict(self) -> str:
        return verdict(self.k, self.n, self.threshold)

    def verdict_text(self) -> str:
        if self.verdict != NOT_MEASURED:
            return self.verdict
        why = self.why or ("pending: its cells are not done yet" if self.planned else "")
        return f"{NOT_MEASURED}: {why}" if why else NOT_MEASURED

    def seed_values(self) -> list[float]:
        return [c / n for _, (c, n) in sorted(self.counts.items()) if n]

    def short(self) -> str:
        """``lora1 alone on A→B 60.0% < 95%`` (for a confounded cell's reason)."""
        value = f"{100 * (self.value or 0.0):.1f}%"
        limit = f" < {100 * self.threshold:.0f}%" if self.threshold is not None else ""
        return f"{self.name} fails: {self.subject} {value}{limit} (n={self.n})"


def _strip_seed(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {k: v for k, v in spec.items() if k != "seed"}
        for name, spec in (record.get("datasets") or {}).items()
    }


def context_key(base: str, record: dict[str, Any]) -> str:
    """What a library's controls are shared by: the base, grid point, evaluation and datasets (no seed)."""
    what = {
        "base": base,
        "point": record.get("point"),
        "evaluation": record.get("evaluation"),
        "datasets": _strip_seed(record),
    }
    return config_hash(json.loads(json.dumps(what, default=str)), 16)


def _eval_data(record: dict[str, Any]) -> dict[str, Any]:
    """The spec of the dataset a cell's record evaluates on ({} when unknown)."""
    ev = record.get("evaluation") or {}
    return dict((record.get("datasets") or {}).get(ev.get("dataset"), {}))


def asks_composition(record: dict[str, Any]) -> bool:
    """The cell asks a two-hop or setup dataset's A->C questions, or a graph composition (and is not a
    control). Read from a stored record; `experiments.spec.is_twohop` asks the same of a spec's evaluation."""
    from loralab.worlds.graph import hops_of

    ev = record.get("evaluation") or {}
    data = _eval_data(record)
    task = str(ev.get("file", "")).split(".")[0]
    if "control" in record:
        return False
    if data.get("kind") == "graph":
        return hops_of(task) is not None
    return data.get("kind") in ("twohop", "setup") and task in ("ac", "ac_cot")


def _is_graph(record: dict[str, Any]) -> bool:
    return _eval_data(record).get("kind") == "graph"


def pc3_threshold(record: dict[str, Any]) -> float | None:
    """PC3's threshold: 70% on RR and on a graph (whose library, when it holds the composition's oracle,
    should route to it); none on HH and FF, where PC3 is the familiarity claim itself."""
    return THRESHOLDS["PC3"] if _is_graph(record) or evaluated_variant(record) == "RR" else None


def hop_label(record: dict[str, Any], hop: str) -> str:
    """A→B / B→C; on a graph, the relation the hop is, too: ``Rel1 (A→B)``."""
    from loralab.worlds.graph import hops_of

    task = str((record.get("evaluation") or {}).get("file", "")).split(".")[0]
    names = {h: t for t, h in (hops_of(task) or {}).items()}
    return f"{task_label(names[hop])} ({TASK_LABEL[hop]})" if hop in names else TASK_LABEL[hop]


def task_label(task: str) -> str:
    """A→B, B→C, A→C, A→C (CoT); a graph's Rel1, Rel1→Rel2, Rel1→Rel2 (CoT)."""
    if task in TASK_LABEL:
        return TASK_LABEL[task]
    cot = task.endswith("_cot")
    name = "→".join(part.capitalize() for part in task.removesuffix("_cot").split("_"))
    return f"{name} (CoT)" if cot else name


def evaluated_variant(record: dict[str, Any]) -> str:
    """FF, HH or RR: the variant whose two-hop questions the cell asks."""
    from loralab.worlds.setups import SETUPS

    data = _eval_data(record)
    if data.get("kind") == "setup":
        setup = SETUPS.get(str(data.get("setup")))
        return setup.evaluated if setup else ""
    return str(data.get("variant", ""))


def _kinds(record: dict[str, Any]) -> set[str]:
    roles = record.get("roles") or {}
    return {roles.get(m, "none") for m in record.get("members", [])}


def is_three(record: dict[str, Any]) -> bool:
    """A 3-combination: a library holding hop1, hop2 and oracle experts."""
    return {"hop1", "hop2", "oracle"} <= _kinds(record)


def is_two(record: dict[str, Any]) -> bool:
    """A 2-combination: hop1 and hop2 experts, and neither an oracle nor a mixed expert."""
    kinds = _kinds(record)
    return {"hop1", "hop2"} <= kinds and not kinds & {"oracle", "mixed"}


def _context_labels(jobs: Sequence[CellJob]) -> dict[str, str]:
    """Context key -> a short name: the evaluated set (RR, Setup 2...), with the base when several and the
    grid point when two contexts would read the same."""
    bases = {j.base for j in jobs}
    labels: dict[str, str] = {}
    for job in jobs:
        key = context_key(job.base, job.record)
        g = Group(job.base, job.record)
        label = setup_label(g)
        labels.setdefault(key, f"{job.base} · {label}" if len(bases) > 1 else label)
    clash = [k for k, v in labels.items() if list(labels.values()).count(v) > 1]
    for job in jobs:
        key = context_key(job.base, job.record)
        if key in clash and point_label(Group(job.base, job.record)) != "-":
            labels[key] = f"{labels[key]} ({point_label(Group(job.base, job.record))})"
    return labels


def _measures(job: CellJob, row: dict[str, Any] | None) -> list[tuple[str, str, float | None, Any]]:
    """(control, subject, threshold, (correct, n) or None) that one two-hop cell of one seed contributes."""
    rec = job.record
    out: list[tuple[str, str, float | None, Any]] = []
    for c in rec.get("controls", []):
        name = ROLE_CONTROL.get(c.get("role", ""))
        if name is None:
            continue
        out.append((name, f"{c['expert']} alone on {task_label(c['task'])}", THRESHOLDS[name], c))
    library, method = rec.get("library", "-"), method_label(Group(job.base, rec))
    if is_three(rec) and rec.get("method") == "arrow":
        threshold = pc3_threshold(rec)
        counts = (int(row["correct"]), int(row["n"])) if row else None
        out.append(("PC3", f"{library} · {method}", threshold, counts))
    if is_two(rec):
        for hop in ("ab", "bc"):
            rate = (row.get("metrics") or {}).get(f"retained_{hop}") if row else None
            counts = (rate.k, rate.n) if rate is not None and rate.n else None
            out.append(
                ("PC4", f"{library} · {method}: {hop_label(rec, hop)} kept", THRESHOLDS["PC4"], counts)
            )
    return out


def compute_controls(plan: Plan, stored: dict[str, dict[str, Any]]) -> list[ControlResult]:
    """PC1-PC5 for every context of the run's two-hop cells, in plan order; "not measured" rows where the
    run has no such expert or library."""
    jobs = [j for j in plan.cells if asks_composition(j.record)]
    labels = _context_labels(jobs)
    found: dict[str, dict[tuple[str, str], ControlResult]] = {}
    records: dict[str, dict[str, Any]] = {}
    old: set[str] = set()
    for job in jobs:
        key = context_key(job.base, job.record)
        results = found.setdefault(key, {})
        records.setdefault(key, {**job.record, "base": job.base})
        if "roles" not in job.record or (_is_graph(job.record) and "retention" not in job.record):
            old.add(key)
        seed = int(job.record.get("seed", 0))
        for name, subject, threshold, counts in _measures(job, stored.get(job.key)):
            if isinstance(counts, dict):  # a control cell's reference: its stored row, if done
                row = stored.get(counts["key"])
                counts = (int(row["correct"]), int(row["n"])) if row else None
            result = results.setdefault(
                (name, subject), ControlResult(name, labels[key], subject, threshold, key, records[key])
            )
            if seed not in result.planned:
                result.planned.append(seed)
            if counts is not None and seed not in result.counts:
                result.counts[seed] = counts
    out: list[ControlResult] = []
    for key, results in found.items():
        for name in THRESHOLDS:
            mine = [r for (n, _), r in results.items() if n == name]
            if not mine:
                why = OLD_PLAN if key in old else ABSENT[name]
                limit = pc3_threshold(records[key]) if name == "PC3" else THRESHOLDS[name]
                mine = [ControlResult(name, labels[key], "-", limit, key, records[key], why=why)]
            out += mine
    return out


def mark_confounded(groups: Sequence[Group], results: Sequence[ControlResult]) -> None:
    """Set each two-hop group's `confounded` reasons from the controls it depends on (pooled over seeds)."""
    index = {(r.context_key, r.name, r.subject): r for r in results}
    for g in groups:
        rec = g.record
        if not asks_composition(rec) or not g.done:
            continue
        key = context_key(g.base, rec)
        reasons = []
        for c in rec.get("controls", []):
            name = ROLE_CONTROL.get(c.get("role", ""))
            if name == "PC1" or (name == "PC2" and is_three(rec)):
                subject = f"{c['expert']} alone on {task_label(c['task'])}"
                r = index.get((key, name, subject))
                if r is not None and r.verdict == "fail" and r.short() not in reasons:
                    reasons.append(r.short())
        if len(rec.get("members", [])) >= 2:
            for hop in ("ab", "bc"):
                rate = g.metrics.get(f"retained_{hop}")
                if rate is not None and verdict(rate.k, rate.n, THRESHOLDS["PC4"]) == "fail":
                    value = 100 * rate.k / rate.n
                    reasons.append(f"its own {hop_label(rec, hop)} retention {value:.1f}% < 80% (n={rate.n})")
        g.confounded = reasons


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def controls_table(results: Sequence[ControlResult]) -> ReportTable:
    """The table every report opens with: one row per control, its value, interval, n, threshold, verdict,
    and, with several seeds, each seed's value and the between-seed interval."""
    header = ["Context", "Control", "Measured", "Value (%)", "95% Wilson", "n", "Threshold", "Verdict"]
    seeds = sorted({s for r in results for s in r.planned})
    if len(seeds) > 1:
        header += ["Each seed (%)", "Mean ± t [between-seed 95%]"]
    body = []
    for r in results:
        ci = wilson(r.k, r.n) if r.n else None
        line = [
            r.context,
            r.name,
            r.subject,
            _pct(r.value),
            f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "-",
            str(r.n),
            f"≥ {100 * r.threshold:.0f}%" if r.threshold is not None else "-",
            r.verdict_text(),
        ]
        if len(seeds) > 1:
            each = ", ".join(f"{s}: {_pct(c / n)}" for s, (c, n) in sorted(r.counts.items()) if n)
            line += [each or "-", between_text(r.seed_values())]
        body.append(line)
    caption = (
        "Positive controls: "
        + "; ".join(f"{k}, {WHAT[k]}, ≥ {100 * v:.0f}%" for k, v in THRESHOLDS.items())
        + " (PC3 only on RR and graphs; on HH and FF it is reported without a threshold). Verdict: pass when "
        "the point estimate reaches the threshold; not measured where the run has no such expert or library; "
        "too few questions below n = 20. Counts pooled over the seeds done. A cell whose controls fail is marked † "
        "(confounded) in the tables below, with the reason."
    )
    if len(seeds) > 1:
        caption += " Between seeds: mean ± t_{0.975,k-1}·sd/√k over the k seeds' values."
    return ReportTable("Positive controls", caption, header, body, [], 3)


def summary(results: Sequence[ControlResult]) -> str:
    """``Controls: 4 pass, 1 fail, 2 not measured`` (the verdicts counted)."""
    if not results:
        return (
            "Controls: not computed. PC1-PC5 are computed for libraries evaluated on a two-hop or setup "
            "dataset's A→C questions or a graph composition, whose hops give the experts' roles; this run "
            "has none, so its numbers are unchecked: nothing here shows that its experts learned their facts."
        )
    counts: dict[str, int] = {}
    for r in results:
        v = NOT_MEASURED if r.verdict == NOT_MEASURED else r.verdict
        v = "reported without threshold" if v == NO_THRESHOLD else v
        counts[v] = counts.get(v, 0) + 1
    return "Controls: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."


def tidy_rows(results: Sequence[ControlResult]) -> list[dict[str, Any]]:
    """The controls as records of the tidy table (`loralab.report.layouts.tidy_rows`), fractions, not
    percent."""
    rows = []
    for r in results:
        ci = wilson(r.k, r.n) if r.n else (None, None)
        ev = r.record.get("evaluation") or {}
        rows.append(
            {
                "section": "control",
                "experiment": r.record.get("experiment", ""),
                "base": r.record.get("base", ""),
                "grid_point": r.record.get("point") or {},
                "eval_dataset": ev.get("dataset", ""),
                "seeds": list(r.planned),
                "seeds_done": sorted(r.counts),
                "n": r.n,
                "correct": r.k,
                "accuracy": r.value,
                "ci_low": ci[0],
                "ci_high": ci[1],
                **seed_columns(r.counts),
                "control": r.name,
                "context": r.context,
                "subject": r.subject,
                "threshold": r.threshold,
                "verdict": r.verdict_text(),
            }
        )
    return rows
