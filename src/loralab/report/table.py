"""The result table, drawn from the store's tidy cell rows: terminal (rich), Markdown and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from rich.table import Table

COLUMNS = ("base", "dataset", "prompting", "method", "library", "n", "accuracy", "95% CI")


def _cells(row: dict[str, Any]) -> list[str]:
    return [
        str(row["base"]),
        str(row["dataset"]),
        str(row["prompting"]),
        str(row["method"]),
        str(row["library"]),
        str(row["n"]),
        f"{row['accuracy']:.3f}",
        f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]",
    ]


def rich_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> Table:
    """Columns that hold one value in every row move into the caption, so the table fits a terminal."""
    cells = [_cells(r) for r in rows]
    constant = [i for i, col in enumerate(COLUMNS[:5]) if len({c[i] for c in cells}) == 1 and len(cells) > 1]
    caption = "; ".join(f"{COLUMNS[i]}: {cells[0][i]}" for i in constant) or None
    keep = [i for i in range(len(COLUMNS)) if i not in constant]
    table = Table(title=title, caption=caption)
    for i in keep:
        table.add_column(
            COLUMNS[i], justify="right" if COLUMNS[i] in ("n", "accuracy") else "left", no_wrap=True
        )
    for c in cells:
        table.add_row(*(c[i] for i in keep))
    return table


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
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
    )
    for r in rows:
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
            ]
        )
    return buf.getvalue()
