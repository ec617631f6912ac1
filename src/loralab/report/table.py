"""The result table, drawn from the store's tidy cell rows: terminal (rich), Markdown and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from rich.table import Table

COLUMNS = ("base", "dataset", "prompting", "method", "library", "n", "accuracy", "95% CI")
# retention columns (evaluation/retention.py), shown when a row has them: metric key -> header
RETENTION = {
    "retained_ab": "A→B kept",
    "retained_bc": "B→C kept",
    "retained_both": "both kept",
    "twohop_given_both": "two-hop given both kept",
    "cot_step1_bridge": "CoT step 1 names B",
    "cot_step2_answer": "CoT step 2 names C",
}


def _retention_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    return [k for k in RETENTION if any(k in (r.get("metrics") or {}) for r in rows)]


def _rate(rate: Any) -> str:
    if rate is None:
        return ""
    return f"{rate.value:.3f} (n={rate.n})" if rate.value is not None else "- (n=0)"


def _cells(row: dict[str, Any], keys: Sequence[str] = ()) -> list[str]:
    metrics = row.get("metrics") or {}
    return [
        str(row["base"]),
        str(row["dataset"]),
        str(row["prompting"]),
        str(row["method"]),
        str(row["library"]),
        str(row["n"]),
        f"{row['accuracy']:.3f}",
        f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]",
    ] + [_rate(metrics.get(k)) for k in keys]


def rich_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    """Columns that hold one value in every row move into the caption, so the table fits a terminal."""
    keys = _retention_keys(rows)
    header = [*COLUMNS, *(RETENTION[k] for k in keys)]
    cells = [_cells(r, keys) for r in rows]
    constant = [i for i, col in enumerate(COLUMNS[:5]) if len({c[i] for c in cells}) == 1 and len(cells) > 1]
    caption = "; ".join(f"{COLUMNS[i]}: {cells[0][i]}" for i in constant) or None
    keep = [i for i in range(len(header)) if i not in constant]
    table = Table(title=title, caption=caption)
    for i in keep:
        table.add_column(header[i], justify="left" if i < 5 else "right", no_wrap=i < len(COLUMNS))
    for c in cells:
        table.add_row(*(c[i] for i in keep))
    return table


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    keys = _retention_keys(rows)
    header = [*COLUMNS, *(RETENTION[k] for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(r, keys)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def by_triplet_markdown(
    rows: Sequence[dict[str, Any]], breakdowns: Sequence[dict[str, dict[str, int]]]
) -> str:
    """Per cell: two-hop questions by their triplet's retention (both / one / none) x right / wrong."""
    lines = [
        "| method | library | both kept: right | wrong | one kept: right | wrong | none kept: right | wrong |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, table in zip(rows, breakdowns, strict=True):
        counts = [
            str(table.get(s, {}).get(k, 0)) for s in ("both", "one", "none") for k in ("right", "wrong")
        ]
        lines.append(f"| {row['method']} | {row['library']} | " + " | ".join(counts) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "run",
            "base",
            "dataset",
            "dataset_version",
            "prompting",
            "method",
            "library",
            "n",
            "correct",
            "accuracy",
            "ci_low",
            "ci_high",
        ]
        + [f"{k}{part}" for k in RETENTION for part in ("", "_n", "_ci_low", "_ci_high")]
    )
    for r in rows:
        metrics = r.get("metrics") or {}
        extra: list[str] = []
        for k in RETENTION:
            rate = metrics.get(k)
            if rate is None:
                extra += ["", "", "", ""]
            else:
                ci = rate.ci or (None, None)
                extra += [
                    "" if rate.value is None else f"{rate.value:.4f}",
                    str(rate.n),
                    "" if ci[0] is None else f"{ci[0]:.4f}",
                    "" if ci[1] is None else f"{ci[1]:.4f}",
                ]
        writer.writerow(
            [
                r["run"],
                r["base"],
                r["dataset"],
                r["dataset_version"],
                r["prompting"],
                r["method"],
                r["library"],
                r["n"],
                r["correct"],
                f"{r['accuracy']:.4f}",
                f"{r['ci_low']:.4f}",
                f"{r['ci_high']:.4f}",
                *extra,
            ]
        )
    return buf.getvalue()
