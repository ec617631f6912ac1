"""The results store: an embedded SQLite database, one row per evaluated example and one per cell."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL, base TEXT NOT NULL, dataset TEXT NOT NULL, dataset_version TEXT,
    prompting TEXT NOT NULL, method TEXT NOT NULL, library TEXT NOT NULL,
    n INTEGER NOT NULL, correct INTEGER NOT NULL, accuracy REAL NOT NULL,
    ci_low REAL NOT NULL, ci_high REAL NOT NULL, config TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    cell_id INTEGER NOT NULL REFERENCES cells(id), example_id TEXT, prompt TEXT, gold TEXT,
    output TEXT, extracted TEXT, correct INTEGER NOT NULL, task TEXT, triplet INTEGER, bridge TEXT
);
CREATE INDEX IF NOT EXISTS examples_cell ON examples(cell_id);
"""

# columns added after the first release; older databases get them on open
EXAMPLE_EXTRAS = {"task": "TEXT", "triplet": "INTEGER", "bridge": "TEXT"}
EXAMPLE_COLUMNS = ("example_id", "prompt", "gold", "output", "extracted", "correct", *EXAMPLE_EXTRAS)

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
        raise LoralabError(f"{path}: results database not found")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    try:
        if create:
            con.executescript(SCHEMA)
        con.execute("SELECT count(*) FROM cells").fetchone()
        have = {row[1] for row in con.execute("PRAGMA table_info(examples)")}
        for name, kind in EXAMPLE_EXTRAS.items():
            if have and name not in have:
                with con:
                    con.execute(f"ALTER TABLE examples ADD COLUMN {name} {kind}")
    except sqlite3.DatabaseError as exc:
        con.close()
        raise LoralabError(f"{path}: not a loralab results database ({exc})") from exc
    return con


def add_cell(con: sqlite3.Connection, cell: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """Insert one cell and its examples in a single transaction (never half a cell)."""
    config = json.dumps(cell.get("config", {}), sort_keys=True, default=str)
    values = [cell.get(k) for k in CELL_COLUMNS] + [
        config,
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    ]
    with con:
        cur = con.execute(
            f"INSERT INTO cells ({', '.join(CELL_COLUMNS)}, config, created) "
            f"VALUES ({', '.join('?' * (len(CELL_COLUMNS) + 2))})",
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
                    r.get("task"),
                    r.get("triplet"),
                    r.get("bridge"),
                )
                for r in rows
            ],
        )
    return cell_id


def examples(con: sqlite3.Connection, cell_id: int) -> list[dict[str, Any]]:
    """The per-example records of one cell."""
    cur = con.execute(f"SELECT {', '.join(EXAMPLE_COLUMNS)} FROM examples WHERE cell_id = ?", (cell_id,))
    return [dict(zip(EXAMPLE_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def cells(con: sqlite3.Connection, run: str | None = None) -> list[dict[str, Any]]:
    """All cells (of one run if given), oldest first, each with its retention `metrics` (empty when the
    cell has no one-hop records)."""
    query = f"SELECT id, {', '.join(CELL_COLUMNS)} FROM cells"
    args: tuple[Any, ...] = ()
    if run is not None:
        query, args = query + " WHERE run = ?", (run,)
    cur = con.execute(query + " ORDER BY id", args)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    from loralab.evaluate.retention import retention_metrics

    for row in rows:
        row["metrics"] = retention_metrics(examples(con, row["id"]))
    return rows
