"""JSONL files of examples: written by the world builders, read (and validated) by training and evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def read_jsonl(path: Path | str, required: Sequence[str] = ("prompt", "answer")) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a bad line, or a `required` field missing, not a string or blank, is a
    `LoralabError` naming file and line."""
    path = Path(path)
    if path.is_dir():
        raise LoralabError(f"{path}: a folder, not a JSONL file (name one of its .jsonl files)")
    if not path.is_file():
        raise LoralabError(f"{path}: dataset file not found")
    rows = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise LoralabError(f"{path}: not a UTF-8 text file ({exc.reason})") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoralabError(f"{path}:{lineno}: not JSONL ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise LoralabError(f"{path}:{lineno}: each line must be a JSON object")
        missing = [k for k in required if not isinstance(row.get(k), str)]
        if missing:
            raise LoralabError(f"{path}:{lineno}: missing string field(s) {', '.join(missing)}")
        empty = [k for k in required if not row[k].strip()]
        if empty:
            raise LoralabError(f"{path}:{lineno}: empty field(s) {', '.join(empty)}")
        rows.append(row)
    if not rows:
        raise LoralabError(f"{path}: no examples")
    return rows
