"""Retention-aware scoring: separate "the facts were forgotten" from "the facts were not composed".

A combined model is scored on the two-hop questions and on the held-out one-hop questions of the same
triplets (A->B and B->C). Per triplet, a hop is *retained* when the model answers every one of that triplet's
held-out questions for the hop. From per-example records (dicts with `task`, `triplet`, `correct`, and for
two-hop rows `output`, `bridge` (B) and `gold` (C)):

- retention A->B and B->C: accuracy over the one-hop questions;
- both retained: the fraction of triplets whose two hops are both retained;
- two-hop accuracy, and two-hop accuracy *given both retained* (over the two-hop questions of those triplets;
  n = 0 is reported as such, never as 0%): the number that isolates composition;
- for CoT outputs, whether step 1 names the right bridge entity B and step 2 the right answer C.

A graph composition (``rel1_rel2_cot``, Table 11) is scored the same way: its hops are the atomic relations
it chains (`loralab.worlds.graph.hops_of`), a triplet is a composition question's subject (its split unit),
hop 1 asks the first relation's questions about that subject and hop 2 the second relation's questions about
its middle entity (`retention_sets`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError
from loralab.evaluation.score import wilson

ONE_HOP = ("ab", "bc")
TWO_HOP = ("ac", "ac_cot")
_SECOND = re.compile(r"Second, we need to answer the question", re.IGNORECASE)
_THEREFORE = re.compile(r"Therefore, the answer is", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """k of n, with its 95% Wilson interval; `value` is None when n = 0."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n) if self.n else None

    def __str__(self) -> str:
        return f"{self.value:.3f} (n={self.n})" if self.value is not None else "- (n=0)"


def cot_steps(output: str) -> tuple[str, str]:
    """The text of step 1 (before "Second, we need ...") and of step 2 (from there to "Therefore")."""
    second = _SECOND.search(output)
    if second is None:
        return output, ""
    rest = output[second.start() :]
    therefore = _THEREFORE.search(rest)
    return output[: second.start()], rest[: therefore.start()] if therefore else rest


def names(text: str, entity: str) -> bool:
    """`entity` occurs in `text` as a whole word (case-insensitive)."""
    return bool(entity) and re.search(rf"(?<!\w){re.escape(entity)}(?!\w)", text, re.IGNORECASE) is not None


def kind_of(task: Any) -> str | None:
    """ab, bc, ac or ac_cot for a two-hop task, and ac / ac_cot for a graph composition; None otherwise."""
    from loralab.worlds.graph import hops_of

    if task in ONE_HOP or task in TWO_HOP:
        return str(task)
    hops = hops_of(str(task)) if task else None
    return hops[task] if hops else None


def _is_two(r: dict[str, Any]) -> bool:
    return kind_of(r.get("task")) in TWO_HOP


def retained(records: Iterable[dict[str, Any]]) -> dict[str, dict[int, bool]]:
    """Per one-hop task, per triplet: were all of its held-out questions answered right?"""
    out: dict[str, dict[int, bool]] = {t: {} for t in ONE_HOP}
    for r in records:
        if r.get("task") in ONE_HOP and r.get("triplet") is not None:
            t = int(r["triplet"])
            out[r["task"]][t] = out[r["task"]].get(t, True) and bool(r["correct"])
    return out


def status(kept: dict[str, dict[int, bool]], triplet: int) -> str:
    """`both`, `one` or `none` of the triplet's hops retained (`unknown` without one-hop records)."""
    hops = [kept[t].get(triplet) for t in ONE_HOP]
    if any(h is None for h in hops):
        return "unknown"
    return {2: "both", 1: "one", 0: "none"}[sum(bool(h) for h in hops)]


def retention_metrics(records: Sequence[dict[str, Any]]) -> dict[str, Rate]:
    """The cell's metrics (see the module docstring); empty when there are no one-hop records."""
    two = [r for r in records if _is_two(r)]
    ones = [r for r in records if r.get("task") in ONE_HOP]
    if not ones:
        return {}
    kept = retained(ones)
    per_task = {t: [r for r in ones if r["task"] == t] for t in ONE_HOP}
    triplets = sorted(set(kept["ab"]) & set(kept["bc"]))
    cond = [r for r in two if r.get("triplet") is not None and status(kept, int(r["triplet"])) == "both"]
    metrics = {
        "twohop": Rate(sum(bool(r["correct"]) for r in two), len(two)),
        "retained_ab": Rate(sum(bool(r["correct"]) for r in per_task["ab"]), len(per_task["ab"])),
        "retained_bc": Rate(sum(bool(r["correct"]) for r in per_task["bc"]), len(per_task["bc"])),
        "retained_both": Rate(sum(status(kept, t) == "both" for t in triplets), len(triplets)),
        "twohop_given_both": Rate(sum(bool(r["correct"]) for r in cond), len(cond)),
    }
    cot = [r for r in two if kind_of(r.get("task")) == "ac_cot" and r.get("output") is not None]
    if cot:
        steps = [cot_steps(r["output"]) for r in cot]
        metrics["cot_step1_bridge"] = Rate(
            sum(names(s1, r.get("bridge") or "") for (s1, _), r in zip(steps, cot, strict=True)), len(cot)
        )
        metrics["cot_step2_answer"] = Rate(
            sum(names(s2, r["gold"]) for (_, s2), r in zip(steps, cot, strict=True)), len(cot)
        )
    return metrics


def by_triplet(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Two-hop questions counted by their triplet's retention (both / one / none) and by right / wrong."""
    kept = retained(records)
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"right": 0, "wrong": 0})
    for r in records:
        if _is_two(r):
            t = r.get("triplet")  # None: a row stored without one (a graph cell from before graph-1)
            table[status(kept, int(t)) if t is not None else "unknown"][
                "right" if r["correct"] else "wrong"
            ] += 1
    return {s: dict(table[s]) for s in ("both", "one", "none", "unknown") if s in table}


def retention_files(data: Path) -> list[Path]:
    """The one-hop files that go with a two-hop dataset file, if they are all there."""
    task, _, rest = data.name.partition(".")
    if task not in ("ac", "ac_cot"):
        return []
    files = [data.parent / f"{hop}.{rest}" for hop in ("ab", "bc")]
    return files if all(f.is_file() for f in files) else []


def retention_sets(data: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """The one-hop questions that go with a two-hop file, as (name, rows) with `task` ab / bc and `triplet`:
    a two-hop dataset's ab and bc files of the same split as they are; for a graph composition
    ``relX_relY[_cot].SPLIT.jsonl``, the relX questions about each question's subject and the relY questions
    about its middle entity, each tagged with the composition question's unit as its triplet (a middle entity
    shared by several subjects is asked once per subject) and its own task kept as `relation_task`. Empty
    when the files are not all there."""
    from loralab.worlds.graph import hops_of
    from loralab.worlds.jsonl import read_jsonl

    files = retention_files(data)
    if files:
        return [(f.stem, read_jsonl(f, required=("prompt", "gold"))) for f in files]
    task, _, rest = data.name.partition(".")
    hops = hops_of(task)
    if hops is None or not data.is_file():
        return []
    first, second = (name for name, hop in hops.items() if hop in ONE_HOP)
    siblings = [data.parent / f"{first}.{rest}", data.parent / f"{second}.{rest}"]
    if not all(f.is_file() for f in siblings):
        return []
    questions = read_jsonl(data, required=("subject", "middle"))
    if any(not isinstance(r.get("unit"), int) for r in questions):
        raise LoralabError(f"{data}: a graph composition row without an integer `unit` (its split unit)")
    unit_of = {str(r["subject"]): int(r["unit"]) for r in questions}
    units_of: dict[str, set[int]] = defaultdict(set)
    for r in questions:
        units_of[str(r["middle"])].add(int(r["unit"]))
    hop1 = [
        {**r, "task": "ab", "triplet": unit_of[r["subject"]], "relation_task": r.get("task")}
        for r in read_jsonl(siblings[0], required=("prompt", "gold", "subject"))
        if r["subject"] in unit_of
    ]
    hop2 = [
        {**r, "task": "bc", "triplet": unit, "relation_task": r.get("task")}
        for r in read_jsonl(siblings[1], required=("prompt", "gold", "subject"))
        for unit in sorted(units_of.get(r["subject"], ()))
    ]
    return [(siblings[0].stem, hop1), (siblings[1].stem, hop2)]
