"""The results store: an embedded SQLite database, one row per evaluated example and one per cell.

Every evaluator's per-example fields are typed columns of `examples` (`EXAMPLE_EXTRAS`: the two-hop task,
triplet and bridge; the GSM analysis: status, solution and error type, steps, extraction, code runs, sandbox
limits), NULL where an evaluator has none; `cells` returns each cell with its retention `metrics` and its
`analysis` counts drawn from them."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError

# a runner's cell is stored once per content key (NULL keys, from one-off commands, never collide)
KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS cells_key ON cells(key)"

# columns added after the first release; older databases get them on open
EXAMPLE_EXTRAS = {
    "task": "TEXT",
    "triplet": "INTEGER",
    "bridge": "TEXT",
    # the GSM evaluator's analysis of each answer (`loralab.gsm.evaluate.analysis_columns`); NULL elsewhere
    "status": "TEXT",
    "solution_type": "TEXT",
    "error_type": "TEXT",
    "steps": "INTEGER",
    "extraction": "TEXT",
    "code_runs": "INTEGER",
    "limits": "TEXT",
}
EXAMPLE_COLUMNS = ("example_id", "prompt", "gold", "output", "extracted", "correct", *EXAMPLE_EXTRAS)
_EXTRA_DDL = ", ".join(f"{name} {kind}" for name, kind in EXAMPLE_EXTRAS.items())
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL, base TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version TEXT,
    prompting TEXT NOT NULL, method TEXT NOT NULL, library TEXT NOT NULL,
    n INTEGER NOT NULL, correct INTEGER NOT NULL, accuracy REAL NOT NULL,
    ci_low REAL NOT NULL, ci_high REAL NOT NULL, config TEXT NOT NULL, created TEXT NOT NULL, key TEXT
);
CREATE TABLE IF NOT EXISTS examples (
    cell_id INTEGER NOT NULL REFERENCES cells(id), example_id TEXT, prompt TEXT, gold TEXT,
    output TEXT, extracted TEXT, correct INTEGER NOT NULL, {_EXTRA_DDL}
);
CREATE INDEX IF NOT EXISTS examples_cell ON examples(cell_id);
"""

CELL_COLUMNS = (
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
)


def connect(path: Path | str, create: bool = True) -> sqlite3.Connection:
    """Open (and, if `create`, initialise) a results database."""
    path = Path(path)
    if not create and not path.is_file():
        why = "not a regular file" if path.exists() and not path.is_dir() else "results database not found"
        raise LoralabError(f"{path}: {why}")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        if create:
            con.executescript(SCHEMA)
        con.execute("SELECT count(*) FROM cells").fetchone()
        found = {row[1] for row in con.execute("PRAGMA table_info(cells)")}
        lacking = [c for c in ("id", *CELL_COLUMNS, "config") if c not in found]
        if lacking:  # another program's cells table: say so, and change nothing in it
            con.close()
            raise LoralabError(
                f"{path}: not a loralab results database (its cells table lacks {', '.join(lacking[:4])}"
                f"{', ...' if len(lacking) > 4 else ''})"
            )
        have = {row[1] for row in con.execute("PRAGMA table_info(examples)")}
        for name, kind in EXAMPLE_EXTRAS.items():
            if have and name not in have:
                with con:
                    con.execute(f"ALTER TABLE examples ADD COLUMN {name} {kind}")
        cell_columns = {row[1] for row in con.execute("PRAGMA table_info(cells)")}
        if cell_columns and "key" not in cell_columns:
            with con:
                con.execute("ALTER TABLE cells ADD COLUMN key TEXT")
        if cell_columns:
            with con:
                con.execute(KEY_INDEX)
    except sqlite3.DatabaseError as exc:
        con.close()
        raise LoralabError(f"{path}: not a loralab results database ({exc})") from exc
    return con


def add_cell(
    con: sqlite3.Connection, cell: dict[str, Any], rows: list[dict[str, Any]], key: str | None = None
) -> int:
    """Insert one cell and its examples in a single transaction (never half a cell). A cell whose `key` is
    already stored is not inserted again; its id is returned."""
    config = json.dumps(cell.get("config", {}), sort_keys=True, default=str)
    values = [cell.get(k) for k in CELL_COLUMNS] + [
        config,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        key,
    ]
    with con:
        if key is not None:
            found = con.execute("SELECT id FROM cells WHERE key = ?", (key,)).fetchone()
            if found:
                return int(found[0])
        cur = con.execute(
            f"INSERT INTO cells ({', '.join(CELL_COLUMNS)}, config, created, key) "
            f"VALUES ({', '.join('?' * (len(CELL_COLUMNS) + 3))})",
            values,
        )
        cell_id = int(cur.lastrowid or 0)
        con.executemany(
            f"INSERT INTO examples (cell_id, {', '.join(EXAMPLE_COLUMNS)}) "
            f"VALUES ({', '.join('?' * (len(EXAMPLE_COLUMNS) + 1))})",
            [
                (
                    cell_id,
                    r.get("id"),
                    r["prompt"],
                    r["gold"],
                    r["output"],
                    r["extracted"],
                    int(r["correct"]),
                    *(r.get(name) for name in EXAMPLE_EXTRAS),
                )
                for r in rows
            ],
        )
    return cell_id


def stored_keys(con: sqlite3.Connection) -> dict[str, int]:
    """Content key -> cell id of every keyed cell."""
    return {k: int(i) for k, i in con.execute("SELECT key, id FROM cells WHERE key IS NOT NULL")}


def examples(con: sqlite3.Connection, cell_id: int) -> list[dict[str, Any]]:
    """The per-example records of one cell."""
    cur = con.execute(f"SELECT {', '.join(EXAMPLE_COLUMNS)} FROM examples WHERE cell_id = ?", (cell_id,))
    return [dict(zip(EXAMPLE_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def cells(
    con: sqlite3.Connection, run: str | None = None, keys: list[str] | None = None
) -> list[dict[str, Any]]:
    """All cells (of one run, or with one of `keys`, if given), oldest first (in `keys` order when given),
    each with its `config` parsed and its retention `metrics` (empty when the cell has no one-hop records)."""
    query = f"SELECT id, {', '.join(CELL_COLUMNS)}, config, key FROM cells"
    args: tuple[Any, ...] = ()
    if run is not None:
        query, args = query + " WHERE run = ?", (run,)
    cur = con.execute(query + " ORDER BY id", args)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    if keys is not None:
        by_key = {r["key"]: r for r in rows if r["key"] is not None}
        rows = [by_key[k] for k in keys if k in by_key]
    for row in rows:
        _check_cell(con, row)
    from loralab.evaluation.retention import retention_metrics

    for row in rows:
        records = examples(con, row["id"])
        row["metrics"] = retention_metrics(records)
        row["analysis"] = analysis_counts(records)
    return rows


def _check_cell(con: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Parse a cell's config and check its counts, in place: a row damaged by hand or by another program is
    one line naming the database and the cell, not a traceback or a wrong table further on."""
    n, correct = row["n"], row["correct"]
    problem = None
    try:
        row["config"] = json.loads(row["config"])
        if not isinstance(row["config"], dict):
            problem = "config: not a JSON object"
    except (TypeError, ValueError):
        problem = "config: not valid JSON"
    if problem is None:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (n, correct))
        fractions = [row[k] for k in ("accuracy", "ci_low", "ci_high")]
        if not ints or not 0 <= correct <= n:
            problem = f"n {n!r}, correct {correct!r}: need whole numbers with 0 <= correct <= n"
        elif not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in fractions):
            problem = f"accuracy and its interval {fractions!r}: need numbers in [0, 1]"
    if problem is not None:
        db = (
            next((r[2] for r in con.execute("PRAGMA database_list") if r[1] == "main"), "")
            or "the results store"
        )
        raise LoralabError(f"{db}: cell {row['id']}: {problem} (a damaged row; delete it and run again)")


def analysis_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """The examples' analysis counted (empty when they have none): ``status:S`` and
    ``type:SOLUTION_TYPE/ERROR_TYPE`` -> how many examples."""
    counts: dict[str, int] = {}
    for r in records:
        if r.get("status") is None:
            continue
        for key in (f"status:{r['status']}", f"type:{r['solution_type']}/{r['error_type']}"):
            counts[key] = counts.get(key, 0) + 1
    return counts
