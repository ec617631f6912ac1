"""The report's diagnostics tables: each cell's verdict and scores (from WORKDIR/diagnostics/KEY/, written by
`loralab run`), and whether each score predicts the measured accuracy and retention across the cells
(Spearman's rho with a 95% bootstrap interval, `loralab.diagnose.validate`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loralab.artifacts import read_json
from loralab.diagnose import DIAGNOSTICS, VERSION
from loralab.diagnose.validate import spearman_ci
from loralab.diagnose.verdict import verdict
from loralab.report.layouts import ReportTable
from loralab.report.run import stored_cells

SCORES = (
    ("owner_coefficient", "owner coef."),
    ("answer_owner_top1", "answer owner top-1"),
    ("entropy_ratio", "entropy / ln E"),
    ("dilution_ratio", "dilution ratio"),
    ("crosstalk", "crosstalk"),
    ("prototype_abs_cos", "prototype |cos|"),
    ("delta_cos", "delta cos"),
    ("sign_conflict", "sign conflict"),
)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def diagnosed(plan: Any, stored: dict[str, dict[str, Any]]) -> list[tuple[Any, dict[str, Any], Any]]:
    """(cell job, its verdict, its stored cell or None) for every cell of `plan` with diagnostics."""
    out = []
    for job in plan.cells:
        path = plan.workdir / "diagnostics" / job.key / DIAGNOSTICS
        if path.is_file():
            # the verdict is a function of the stored measurements: recomputed, so older runs get new scores
            out.append((job, verdict(read_json(path)), stored.get(job.key)))
    return out


def diagnostics_tables(plan: Any, stored: dict[str, dict[str, Any]]) -> list[ReportTable]:
    """Per diagnosed cell of `plan`: its labels and scores; then the scores' rank correlation with the stored
    cells' two-hop accuracy and retention. Empty when no cell has diagnostics."""
    found = diagnosed(plan, stored)
    if not found:
        return []
    rows = []
    for job, v, _ in found:
        scores = v.get("scores", {})
        point = ", ".join(f"{k}={x}" for k, x in (job.record.get("point") or {}).items()) or "-"
        labels = "; ".join(v.get("labels", [])) or "-"
        seed = str(job.record.get("seed", "-"))
        rows.append([job.method, job.library, point, seed, labels] + [_num(scores.get(k)) for k, _ in SCORES])
    header = ["method", "library", "point", "seed", "verdict", *(h for _, h in SCORES)]
    older = sum(
        read_json(plan.workdir / "diagnostics" / job.key / DIAGNOSTICS).get("version") != VERSION
        for job, _, _ in found
    )
    stale = (
        f" {older} of these cells were diagnosed by an older loralab: `loralab run` on the spec (with the "
        "run's --scale, --seeds and --only, and diagnostics on) redoes them from the stored outputs."
        if older
        else ""
    )
    per_cell = ReportTable(
        "Diagnostics per cell (loralab diagnose; thresholds in src/loralab/diagnose/verdict.py)",
        "Scores over the cell's probes (at most 16 per task of its evaluation and retention files); `-`: not "
        "measured (routing needs a router, owner coef. needs labelled probes, dilution needs strength curves)."
        + stale,
        header,
        rows,
        [],
        4,
    )
    pairs = [(v.get("scores", {}), cell) for _, v, cell in found]
    return [per_cell, prediction_table(pairs, "over the diagnosed cells of this run")]


def _metric(name: str) -> Callable[[dict[str, Any]], float | None]:
    def value(cell: dict[str, Any]) -> float | None:
        m = (cell.get("metrics") or {}).get(name)
        return None if m is None or not m.n else float(m.value)

    return value


TARGETS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "two-hop accuracy": lambda cell: cell.get("accuracy"),
    "A→B kept": _metric("retained_ab"),
    "B→C kept": _metric("retained_bc"),
    "both hops retained": _metric("retained_both"),
}


def prediction(found: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> dict[str, dict[str, Any]]:
    """Per score and target: Spearman's rho with its bootstrap interval and n (`spearman_ci`)."""
    out: dict[str, dict[str, Any]] = {}
    for key, _ in SCORES:
        out[key] = {}
        for target, fn in TARGETS.items():
            xs: list[float] = []
            ys: list[float] = []
            for s, c in found:
                y = None if c is None or s.get(key) is None else fn(c)
                if y is not None:
                    xs.append(float(s[key]))
                    ys.append(y)
            out[key][target] = spearman_ci(xs, ys)
    return out


def _rho(r: dict[str, Any]) -> str:
    ci = r["ci95"]
    if r["rho"] is None:
        return f"- (n={r['n']})"
    n = f"n={r['n']}" + (f"; {r['why']}" if r.get("why") else "")
    return f"{r['rho']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "") + f" ({n})"


def prediction_table(found: list[tuple[dict[str, Any], dict[str, Any] | None]], scope: str) -> ReportTable:
    """The rho of every score against every target, `scope` saying which cells were pooled."""
    rhos = prediction(found)
    body = [[label, *(_rho(rhos[key][t]) for t in TARGETS)] for key, label in SCORES]
    return ReportTable(
        "Do the diagnostics predict? (Spearman rho across cells, 95% bootstrap interval)",
        f"rho between each score and the cell's measured numbers, {scope}; `-`: fewer than 3 cells, or a "
        "constant score or target; no interval under 8 cells or 3 distinct values on a side (a bootstrap "
        "over so few is degenerate). A rho whose interval covers 0, or without an interval, predicts nothing "
        "here.",
        ["score", *TARGETS],
        body,
        [],
        1,
    )


def pooled_prediction(folders: list[Path]) -> tuple[ReportTable, list[dict[str, Any]]]:
    """The prediction table over the diagnosed cells of several run folders (any bases, any workdirs), and
    one record per pooled cell (run, method, library, point, seed, scores, measured numbers)."""
    from loralab.experiments.plan import load_plan

    found, records = [], []
    seen: set[str] = set()  # a cell's key is its content: two runs sharing a cell (figure 2's in the
    repeats = 0  # bridge ablation's) count it once
    for folder in folders:
        plan = load_plan(folder)
        stored = stored_cells(plan, list(dict.fromkeys(c.key for c in plan.cells)))
        for job, v, cell in diagnosed(plan, stored):
            if job.key in seen:
                repeats += 1
                continue
            seen.add(job.key)
            scores = v.get("scores", {})
            found.append((scores, cell))
            measured = {t: fn(cell) if cell else None for t, fn in TARGETS.items()}
            records.append(
                {
                    "run": plan.run,
                    "method": job.method,
                    "library": job.library,
                    "point": job.record.get("point") or {},
                    "seed": job.record.get("seed"),
                    "scores": {k: scores.get(k) for k, _ in SCORES},
                    "measured": measured,
                }
            )
    names = ", ".join(Path(f).name for f in folders)
    again = f" ({repeats} cells shared between the runs counted once)" if repeats else ""
    return prediction_table(found, f"pooled over the diagnosed cells of {names}{again}"), records
