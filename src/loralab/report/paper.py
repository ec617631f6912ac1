"""The paper's published numbers, as reference data: the "paper" column beside ours in a report.

`paper_results.json` holds every number of Tables 1-3 and 6-14 of the position paper (arXiv 2506.13479), one
row per published cell, keyed by its table and by the fields that name the row and column in that table
(dataset, setup, model, method, library, targets, graph, ...); accuracies are in percent. Table 1 is not
stored twice: it equals the Arrow rows of Table 9 (and Table 2 the 0-shot rows of Table 13), and
`paper_number` answers for both names.

`paper_match` finds the published cell that corresponds to one cell of ours, from its plan record and the
files its experts train on:

- a `setup` dataset named ``setup-N``, evaluated on its CoT two-hop test split, over two experts trained on
  the setup's ``lora1.train.jsonl`` and ``lora2.train.jsonl``: Table 9's setup N (the paper's Setup 1 is not
  in Table 9, so it and every non-MLP target come from Table 8);
- a `setup` dataset named ``familiarity-X`` (X = FF, HH, RR), evaluated the same way: Table 6 (MLP LoRAs) or
  Table 7 (FF, other targets); experts on lora1 and lora2 are the 2-combination, with lora3 the
  3-combination, lora3 alone the oracle expert, lora4 alone the mixed two-hop expert;
- a `graph` dataset over the ten experts of `worlds.graph.graph_experts`: Table 11, shared or disjoint;
- a `twohop` RR dataset (spouse_born_in), MLP experts on its ``ab`` and ``bc`` training files, tested on
  the second half of the triplets (the paper's CAT fits on the first half): Table 10.

Experts are recognised by the files they train on, not by their names in a spec; all of a library's experts
must share one target set (mlp, attention or both), which picks Table 6 or 7, 9 or 8.

Methods map by what they compute: uniform, arrow, ties, and CAT (the paper's CAT is trained: our
``cat_learned``); a library of one expert, or the ``oracle`` method's chosen expert, is the paper's
single-expert column whatever the method. Anything else has no paper number: a report then shows none
rather than a near miss.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RESULTS_FILE = Path(__file__).with_name("paper_results.json")
DEFAULT_MODEL = "Qwen2.5-3B-Instruct"
"""The paper's smallest two-hop model, the nearest to the built-in bases: the default reference column."""
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "1": ("9", {"method": "arrow"}),  # Table 1 equals the Arrow rows of Table 9
    "2": ("13", {"shots": 0}),  # Table 2 equals the 0-shot rows of Table 13
}
METHODS = {"uniform": "uniform", "arrow": "arrow", "ties": "ties", "cat_learned": "cat"}
"""Our method -> the paper's name for the same computation."""
SINGLE = {"lora3": "oracle expert", "lora4": "mixed two-hop expert"}
"""Section 4.1.1's single experts (familiarity setups) -> the paper's column."""
TARGETS_LABEL = {"mlp": "MLP", "attention": "Attention", "both": "MLP + Attention"}


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RESULTS_FILE.read_text())
    return data


def source() -> str:
    """The citation of the numbers."""
    return str(_data()["source"])


def paper_rows(table: str | int | None = None) -> list[dict[str, Any]]:
    """The stored rows (of one table, if given; Table 1 and 2 through their aliases)."""
    rows: list[dict[str, Any]] = _data()["rows"]
    if table is None:
        return rows
    name, fixed = ALIASES.get(str(table), (str(table), {}))
    return [r for r in rows if r["table"] == name and all(r.get(k) == v for k, v in fixed.items())]


def _matches(row: dict[str, Any], fields: dict[str, Any]) -> bool:
    return all(k in row and str(row[k]) == str(v) for k, v in fields.items())


def paper_number(table: str | int, **row: Any) -> float | None:
    """The paper's accuracy (percent) in `table` at the row and column `row` names, e.g.
    ``paper_number(9, setup=2, method="arrow", model="Qwen2.5-3B-Instruct")`` -> 73.5. None when the table
    has no such cell; ValueError when `row` names more than one."""
    hits = [r for r in paper_rows(table) if _matches(r, row)]
    if not hits:
        return None
    if len(hits) > 1:
        raise ValueError(f"paper Table {table}: {len(hits)} rows match {row}; name more fields")
    return float(hits[0]["accuracy"])


@dataclass(frozen=True)
class PaperMatch:
    """The published numbers of one cell of ours: its table, the fields that found it, one value per model."""

    table: str
    fields: dict[str, str]
    values: dict[str, float]

    def value(self, model: str) -> tuple[str, float]:
        """(model, accuracy) for `model`, or for the table's first model when it lacks that one."""
        if model in self.values:
            return model, self.values[model]
        first = next(iter(self.values))
        return first, self.values[first]


def _targets(record: dict[str, Any]) -> str | None:
    kinds = set(record.get("targets", {}).values())
    return kinds.pop() if len(kinds) == 1 else None


def _graph_files() -> list[list[str]]:
    from loralab.worlds.graph import graph_experts

    return sorted(sorted(e["files"]) for e in graph_experts().values())


def candidates(record: dict[str, Any], trained: Sequence[Sequence[str]]) -> list[tuple[str, dict[str, str]]]:
    """The (table, fields) where the paper could hold this cell, most specific first; the model left open.

    `trained` lists, per member of the library, the files it trains on: a file of the evaluated dataset by
    its name (``lora1.train.jsonl``), any other as ``FOLDER/NAME``. The paper's cell is recognised by what
    its experts train on, whatever the spec calls them."""
    ev = record.get("evaluation", {})
    data = record.get("datasets", {}).get(ev.get("dataset"), {})
    members = [list(files) for files in trained]
    method = METHODS.get(record.get("method", ""))
    if data.get("kind") == "graph":
        if sorted(sorted(m) for m in members) != _graph_files() or method is None:
            return []
        return [("11", {"graph": data["variant"], "method": method, "library": "10 LoRAs"})]
    targets = _targets(record)
    if ev.get("file") != f"ac_cot.{ev.get('split')}.jsonl" or targets is None:
        return []
    experts = [m[0].removesuffix(".train.jsonl") if len(m) == 1 else "" for m in members]
    if record.get("method") == "oracle":  # one expert of the library alone
        names = list(record.get("members", []))
        chosen = (record.get("options") or {}).get("expert")
        if chosen not in names or len(names) != len(experts):
            return []
        experts = [experts[names.index(chosen)]]
    if data.get("kind") == "twohop":
        if (data.get("variant"), data.get("relations")) != ("RR", "spouse_born_in") or method is None:
            return []
        if experts != ["ab", "bc"] or ev.get("triplets") != "second-half" or targets != "mlp":
            return []
        return [("10", {"dataset": "RR", "library": "2-combination", "method": method})]
    if data.get("kind") != "setup":
        return []
    setup = str(data["setup"])
    if setup.startswith("familiarity-"):
        if len(experts) == 1 and experts[0] in SINGLE:
            library, method = SINGLE[experts[0]], "single"
        elif experts in (["lora1", "lora2"], ["lora1", "lora2", "lora3"]):
            library = f"{len(experts)}-combination"
        else:
            return []
        if method is None:
            return []
        fields = {"dataset": setup.removeprefix("familiarity-"), "library": library, "method": method}
        fields["targets"] = targets
        return [("6", fields), ("7", fields)]
    if experts != ["lora1", "lora2"] or method is None:
        return []
    number = setup.removeprefix("setup-")
    fields = {"setup": number, "library": "2-combination", "method": method, "targets": targets}
    return [("9", fields), ("8", fields)]


def paper_match(record: dict[str, Any], trained: Sequence[Sequence[str]]) -> PaperMatch | None:
    """The paper's numbers for one cell of ours (its plan record and its experts' training files), or None
    (see the module docstring)."""
    for table, fields in candidates(record, trained):
        rows = [r for r in paper_rows(table) if _matches(r, fields)]
        if rows:
            return PaperMatch(table, fields, {str(r["model"]): float(r["accuracy"]) for r in rows})
    return None
