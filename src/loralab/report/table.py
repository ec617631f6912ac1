"""The result table, drawn from the store's tidy cell rows: terminal (rich), Markdown and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from loralab.experiments.store import CELL_COLUMNS

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


STORE_COLUMNS = (
    *CELL_COLUMNS,
    *(f"{k}{part}" for k in RETENTION for part in ("", "_n", "_ci_low", "_ci_high")),
)


def store_records(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store's cell rows as tidy records (`STORE_COLUMNS`), retention rates split into columns."""
    records = []
    for r in rows:
        record = {c: r.get(c) for c in STORE_COLUMNS[:12]}
        metrics = r.get("metrics") or {}
        for k in RETENTION:
            rate = metrics.get(k)
            ci = (rate.ci if rate is not None else None) or (None, None)
            record[k] = None if rate is None else rate.value
            record[f"{k}_n"] = None if rate is None else rate.n
            record[f"{k}_ci_low"], record[f"{k}_ci_high"] = ci
        records.append(record)
    return records


def csv_value(value: Any) -> str:
    """One value of a tidy record as CSV text: None empty, a bool yes/no, a float to 4 decimals, a dict as
    sorted JSON, a list space-separated, a tuple colon-joined (``SEED:ACCURACY``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple):
        return (":" if isinstance(value, tuple) else " ").join(csv_value(v) for v in value)
    return str(value)


def to_csv(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """The one CSV writer: tidy records (`store_records`, `loralab.report.layouts.tidy_rows`) under
    `columns` (default: the first record's keys), each value as `csv_value` writes it."""
    header = list(columns if columns is not None else (records[0] if records else {}))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for record in records:
        writer.writerow([csv_value(record.get(c)) for c in header])
    return buf.getvalue()
