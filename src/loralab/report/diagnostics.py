"""The report's diagnostics tables: each cell's verdict and scores (from WORKDIR/diagnostics/KEY/, written by
`loralab run`), and whether each score predicts the measured accuracy and retention across the cells
(Spearman's rho with a 95% bootstrap interval, `loralab.diagnose.validate`)."""

from __future__ import annotations

from typing import Any

from loralab.artifacts import read_json
from loralab.diagnose import DIAGNOSTICS
from loralab.diagnose.validate import spearman_ci
from loralab.report.layouts import ReportTable

SCORES = (
    ("owner_coefficient", "owner coef."),
    ("entropy_ratio", "entropy / ln E"),
    ("dilution_ratio", "dilution ratio"),
    ("prototype_abs_cos", "prototype |cos|"),
    ("delta_cos", "delta cos"),
    ("sign_conflict", "sign conflict"),
)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def diagnostics_tables(plan: Any, stored: dict[str, dict[str, Any]]) -> list[ReportTable]:
    """Per diagnosed cell of `plan`: its labels and scores; then the scores' rank correlation with the stored
    cells' two-hop accuracy and both-hops retention. Empty when no cell has diagnostics."""
    rows, found = [], []
    for job in plan.cells:
        path = plan.workdir / "diagnostics" / job.key / DIAGNOSTICS
        if not path.is_file():
            continue
        v = read_json(path).get("verdict", {})
        scores = v.get("scores", {})
        point = ", ".join(f"{k}={x}" for k, x in (job.record.get("point") or {}).items()) or "-"
        rows.append(
            [
                job.method,
                job.library,
                point,
                str(job.record.get("seed", "-")),
                "; ".join(v.get("labels", [])) or "-",
            ]
            + [_num(scores.get(k)) for k, _ in SCORES]
        )
        found.append((scores, stored.get(job.key)))
    if not rows:
        return []
    header = ["method", "library", "point", "seed", "verdict", *(h for _, h in SCORES)]
    per_cell = ReportTable(
        "Diagnostics per cell (loralab diagnose; thresholds in src/loralab/diagnose/verdict.py)",
        "Scores over the cell's probes (at most 16 per task of its evaluation and retention files); `-`: not "
        "measured (routing needs a router, owner coef. needs labelled probes, dilution needs strength curves).",
        header,
        rows,
        [],
        4,
    )
    return [per_cell, _prediction(found)]


def _prediction(found: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> ReportTable:
    targets = {
        "two-hop accuracy": lambda cell: cell.get("accuracy"),
        "both hops retained": lambda cell: (
            m.value if (m := cell.get("metrics", {}).get("retained_both")) else None
        ),
    }
    body = []
    for key, label in SCORES:
        line = [label]
        for fn in targets.values():
            pairs = [(s[key], fn(c)) for s, c in found if c is not None and s.get(key) is not None]
            pairs = [(x, y) for x, y in pairs if y is not None]
            r = spearman_ci([x for x, _ in pairs], [y for _, y in pairs])
            ci = r["ci95"]
            text = (
                "-"
                if r["rho"] is None
                else f"{r['rho']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
            )
            line.append(f"{text} (n={r['n']})")
        body.append(line)
    return ReportTable(
        "Do the diagnostics predict? (Spearman rho across cells, 95% bootstrap interval)",
        "rho between each score and the cell's measured numbers, over the diagnosed cells of this run; `-`: "
        "fewer than 3 cells, or a constant score. A rho whose interval covers 0 predicts nothing here.",
        ["score", *targets],
        body,
        [],
        1,
    )
