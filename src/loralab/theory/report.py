"""The lab's result as a table (terminal, Markdown) and as JSON with keys named after the quantities."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from loralab.theory.lab import LabResult, Row

COLUMNS = (
    "experiment",
    "paper",
    "quantity",
    "measured",
    "predicted (m→∞)",
    "n",
    "accuracy",
    "95% CI",
    "pred. acc.",
)


def _num(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.1e}" if v != 0 and abs(v) < 1e-3 else f"{v:.3f}"


def _cells(row: Row) -> list[str]:
    acc = "-" if math.isnan(row.accuracy) else f"{row.accuracy:.3f}"
    ci = "-" if math.isnan(row.accuracy) else f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
    return [
        row.experiment,
        row.paper,
        ", ".join(row.shown) or "-",
        ", ".join(_num(row.measured.get(k, math.nan)) for k in row.shown) or "-",
        ", ".join(_num(row.predicted.get(k, math.nan)) for k in row.shown) or "-",
        str(row.n),
        acc,
        ci,
        _num(row.predicted_accuracy),
    ]


def caption(result: LabResult) -> str:
    c = result.config
    return (
        f"d={c.d}, m={c.m}, |X|={c.entities}, |R|={c.relations}, {c.seeds} worlds, {result.seconds:.1f} s. "
        "accuracy: the answer is right in the edited world (the composed z on X REL1 REL2); "
        "predicted: the same computation on the m→∞ kernel features"
    )


def rich_table(result: LabResult) -> Table:
    table = Table(title="Theorem 2 lab", caption=caption(result))
    for col in COLUMNS:
        table.add_column(
            col, justify="right" if col in ("n", "accuracy", "pred. acc.") else "left", no_wrap=True
        )
    for row in result.rows:
        table.add_row(*_cells(row))
    return table


def markdown(result: LabResult) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in result.rows]
    return "\n".join(lines) + "\n\n" + caption(result) + "\n"


def _clean(obj: Any) -> Any:
    """NaN (an experiment with no cases) becomes null, so the file is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def to_json(result: LabResult) -> dict[str, Any]:
    """Machine-readable result: the Proposition 1 and Theorem 2 numbers at top level, the m sweep, and per
    experiment its composition accuracy (with its Wilson 95% interval) next to the kernel's prediction."""
    thm2 = next(r for r in result.rows if r.experiment == "thm2_sum")
    experiments = {
        r.experiment: {
            "paper": r.paper,
            "description": r.description,
            "n": r.n,
            "composition_accuracy": r.accuracy,
            "composition_accuracy_ci95": [r.ci_low, r.ci_high],
            "predicted_composition_accuracy": r.predicted_accuracy,
            "measured": r.measured,
            "predicted": r.predicted,
        }
        for r in result.rows
    }
    return _clean(
        {
            "config": result.config.to_dict(),
            "seconds": result.seconds,
            **result.summary,
            "thm2_coeff_measured": {k: thm2.measured.get(k, math.nan) for k in ("a1", "a2")},
            "thm2_coeff_predicted": {k: thm2.predicted.get(k, math.nan) for k in ("a1", "a2")},
            "thm2_composition_accuracy": thm2.accuracy,
            "thm2_sweep": [asdict(p) for p in result.sweep],
            "experiments": experiments,
        }
    )


def write_json(result: LabResult, path: Path) -> Path:
    """The JSON result with provenance (versions, git revision), written atomically."""
    from loralab.artifacts import provenance
    from loralab.artifacts import write_json as write

    write(path, {**to_json(result), "provenance": provenance()})
    return path
