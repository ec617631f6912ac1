"""`loralab report RUN --digest`: a run's controls and cells as two compact Markdown tables, one line each.

Read from the tidy records of ``report.json`` (`loralab.report.layouts.tidy_rows`, `controls.tidy_rows`), so
the digest says nothing the full report does not: per line (with the base and the evaluation as columns
where the run's cells differ in them, and the method's options), the pooled accuracy with its 95% Wilson
interval and n, each seed's value, the between-seed t interval (mean ± t_{0.975,k-1}·sd/√k, clipped to
0-100), and for a cell its retention of each hop and whether its controls confound it (with the reason). It
is the form `docs/results.md` quotes, so a results page can be rebuilt from a run instead of copied by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}"


def pooled(row: dict[str, Any]) -> str:
    """``12.5 [5.5, 26.1] n=40`` (``- n=0`` when nothing is done)."""
    if not row.get("n"):
        return "- n=0"
    return f"{_pct(row['accuracy'])} [{_pct(row['ci_low'])}, {_pct(row['ci_high'])}] n={row['n']}"


def seeds(row: dict[str, Any]) -> str:
    """``0: 10.0 / 1: 15.0 / 2: 12.5`` (each seed done)."""
    return " / ".join(f"{s}: {_pct(v)}" for s, v in row.get("seed_values") or []) or "-"


def between(row: dict[str, Any]) -> str:
    """``t [lo, hi]`` over the seeds' values, or ``-`` for fewer than two seeds."""
    mean, half = row.get("seed_mean"), row.get("seed_t_halfwidth")
    if mean is None or half is None or len(row.get("seed_values") or []) < 2:
        return "-"
    lo, hi = max(0.0, mean - half), min(1.0, mean + half)
    return f"t [{_pct(lo)}, {_pct(hi)}]"


def _point(row: dict[str, Any]) -> str:
    point = row.get("grid_point") or {}
    return ", ".join(str(v) for v in point.values()) or "-"


def _method(row: dict[str, Any]) -> str:
    """``arrow (top_k=2)``: the method with its options, so two settings of one method read apart."""
    options = row.get("options") or {}
    shown = ", ".join(f"{k}={v}" for k, v in options.items() if not isinstance(v, dict))
    return f"{row.get('method')} ({shown})" if shown else str(row.get("method"))


def _what(row: dict[str, Any], key: str) -> str:
    """The base, or the evaluation (file, prompting, split), of a cell: a column only where cells differ."""
    if key == "base":
        return str(row.get("base") or "-")
    return f"{row.get('eval_file')} ({row.get('prompting')}, {row.get('eval_split')})"


def _kept(row: dict[str, Any]) -> str:
    if row.get("retained_ab_n") or row.get("retained_bc_n"):
        return f"{_pct(row.get('retained_ab'))} / {_pct(row.get('retained_bc'))}"
    return "-"


def given_both(row: dict[str, Any]) -> str:
    """Two-hop accuracy on the questions whose triplet keeps both one-hop facts: "% (k of n)", "- (n=0)"
    when retention was measured and no triplet kept both, "-" when it was not measured."""
    n = int(row.get("twohop_given_both_n") or 0)
    if n:
        k = round(float(row.get("twohop_given_both") or 0.0) * n)
        return f"{_pct(row.get('twohop_given_both'))} ({k} of {n})"
    return "- (n=0)" if row.get("retained_both_n") else "-"


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    cell = [str(c).replace("|", "\\|") for c in header]
    lines = ["| " + " | ".join(cell) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in body]


def digest(report: dict[str, Any]) -> str:
    """The controls table and the cells table of one ``report.json`` (its `run`, `controls`, `cells`)."""
    out = [f"## {report.get('run', 'run')}: digest", ""]
    controls = report.get("controls") or []
    if controls:
        header = ["context", "control", "measured", "pooled [95% Wilson]", "seeds", "between seeds"]
        header += ["threshold", "verdict"]
        body = [
            [
                str(r.get("context") or "-"),
                str(r.get("control")),
                str(r.get("subject")),
                pooled(r),
                seeds(r),
                between(r),
                f"≥ {_pct(r['threshold'])}" if r.get("threshold") is not None else "-",
                str(r.get("verdict")),
            ]
            for r in controls
        ]
        out += [*_table(header, body), ""]
    else:
        out += ["No controls (the run has no two-hop or graph-composition library).", ""]
    cells = report.get("cells") or []
    varying = [k for k in ("base", "evaluation") if len({_what(r, k) for r in cells}) > 1]
    header = ["point", *varying, "library", "method", "targets", "pooled [95% Wilson]", "seeds"]
    header += ["between seeds", "kept A→B / B→C", "two-hop given both kept", "confounded"]
    body = [
        [
            _point(r),
            *(_what(r, k) for k in varying),
            str(r.get("library")),
            _method(r),
            str(r.get("targets") or "-"),
            pooled(r),
            seeds(r),
            between(r),
            _kept(r),
            given_both(r),
            f"† {r['confounded_reason']}" if r.get("confounded") else "-",
        ]
        for r in cells
    ]
    out += _table(header, body)
    return "\n".join(out) + "\n"
