"""Diagnostics of one evaluated cell of `loralab run`, kept beside the results store by the cell's key:
``WORKDIR/diagnostics/KEY/diagnostics.json`` (+ .html). The runner calls `diagnose_cell` after storing a
cell; `loralab report` reads them back (`report/diagnostics.py`).

The probes are the cell's evaluation file and its one-hop siblings (retention), at most `PER_TASK` rows per
task, and the routing trace reads the cell's own outputs (no second generation). By default only the cheap
parts run (routing, geometry); strength curves and attribution evaluate more and are asked for explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loralab.artifacts import read_json, write_json
from loralab.combination import get_method
from loralab.diagnose import CHEAP, DIAGNOSTICS, VERSION
from loralab.diagnose.panel import OUTPUTS, diagnose, write_diagnostics
from loralab.errors import LoralabError
from loralab.worlds.jsonl import read_jsonl

PER_TASK = 16


def _cell_rows(data: Path, records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Up to PER_TASK rows per task of the evaluation file and its retention questions (a two-hop file's ab
    and bc siblings, a graph composition's relations: `retention_sets`), with the outputs the cell produced
    for them (matched by task and id). A graph retention row is given back its relation's task (rel1...),
    which is what the experts trained on, so the owner of its fact can be read from their training data."""
    from loralab.evaluation.retention import retention_sets

    outputs = {(r.get("task"), r.get("id")): r.get("output") for r in records}
    sets = [read_jsonl(data, required=("prompt", "gold"))] if data.is_file() else []
    sets += [rows for _, rows in retention_sets(data)]
    rows, outs = [], []
    seen: set[tuple[Any, Any]] = (
        set()
    )  # a shared graph's middle entity is asked once per subject: probe it once
    for found in sets:
        taken = 0
        for r in found:
            out = outputs.get((r.get("task"), r.get("id")))
            if out is None or taken >= PER_TASK or (r.get("task"), r.get("id")) in seen:
                continue
            seen.add((r.get("task"), r.get("id")))
            own = r.get("relation_task")
            rows.append({**r, "task": own} if own else r)
            outs.append(str(out))
            taken += 1
    return rows, outs


def diagnosable(experts: Sequence[Path], method: str) -> bool:
    """Whether a cell has anything to diagnose: a combination of experts (not the base, not a baseline)."""
    return bool(experts) and get_method(method).kind != "baseline"


NOTHING = "nothing-to-diagnose.json"
"""Written instead of diagnostics when a cell has no probes, so that no later run tries again."""


def current(folder: Path, parts: Sequence[str]) -> bool:
    """Whether `folder` holds diagnostics with all of `parts` (or the note that the cell has no probes),
    measured by this version of loralab. A damaged file is not current: it is measured again."""
    for name in (DIAGNOSTICS, NOTHING):
        if not (folder / name).is_file():
            continue
        try:
            found = read_json(folder / name)
        except LoralabError:
            return False
        if isinstance(found, dict) and found.get("version") == VERSION:
            return set(parts) <= set(found.get("parts") or [])
    return False


def diagnose_cell(
    folder: Path,
    base: str,
    experts: Sequence[Path],
    method: str,
    options: dict[str, Any],
    data: Path,
    records: Sequence[dict[str, Any]],
    parts: Sequence[str] = CHEAP,
) -> Path | None:
    """Write the cell's diagnostics into `folder` unless they are there with these parts and this `VERSION`;
    None when there is nothing to diagnose (the base, a single-expert comparison row, no probes)."""
    if not parts or not diagnosable(experts, method):
        return None
    if current(folder, parts):
        return folder
    rows, outputs = _cell_rows(Path(data), records)
    if not rows:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in OUTPUTS:  # an older diagnosis of the cell, measured on probes it no longer has
            (folder / stale).unlink(missing_ok=True)
        write_json(folder / NOTHING, {"version": VERSION, "parts": list(parts), "why": "no probes"})
        return None
    (folder / NOTHING).unlink(missing_ok=True)  # a folder holds a diagnosis or this note, not both
    result = diagnose(base, experts, method, options, rows, parts, outputs=outputs, source=str(data))
    result["parts"] = list(parts)
    result["version"] = VERSION
    return write_diagnostics(result, folder, overwrite=True)
