"""Whose answer is it? Each answer a model gives sorted by the experts whose answers it names.

A combination that forgets a fact may answer with nothing known, or with the right kind of answer for the
wrong fact, or with what *another* expert was trained to answer: a B→C question ("where was B born?")
answered with a person, because the A→B expert's edit acts on every question, not only on those of its
relation. The last is interference with a face one can read off the outputs (`models/README.md`, "Dilution
removed, interference remains"), and it tells apart a base whose question selects the edit that acts from one
whose does not.

Each expert's *answers* are the gold answers of its training files (loralab-trained experts: the files its
meta.json lists) and of its probe rows. An answer the model gives to a question owned by expert `o` is:

- `gold`: scored correct, as the evaluation scores it;
- `own`: it names another of `o`'s answers (the relation's kind of answer, the wrong fact);
- `experts[k]`, per other expert `k`: it names one of `k`'s answers and none of `o`'s (when two other
  experts share that answer, both are credited, so these counts may sum above the wrong answers);
- `other`: none of these (a name no expert was trained to answer, or nothing).

Only the model's extracted answer counts (after "Therefore, the answer is" for CoT, the first line for a
direct answer), names count as whole words, and a name that the question itself contains is skipped (the
subject of a B→C question is one of the A→B expert's answers). Where several names occur, the first counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loralab.evaluation.score import extract, is_correct
from loralab.experts.library import Expert
from loralab.worlds.jsonl import read_jsonl

GOLD, OWN, EXPERT, OTHER = "gold", "own", "expert", "other"


def vocabularies(
    experts: Sequence[Expert], probes: Mapping[int, Sequence[Mapping[str, Any]]]
) -> dict[str, set[str]]:
    """Per expert name, the answers it was trained on (its training files' `gold`) and its probes' golds."""
    out: dict[str, set[str]] = {}
    for i, e in enumerate(experts):
        names = {str(r["gold"]) for r in probes.get(i, []) if r.get("gold")}
        for f in e.meta.get("data") or []:
            path = Path(f)
            if path.is_file():
                names |= {str(r["gold"]) for r in read_jsonl(path, required=("prompt",)) if r.get("gold")}
        out[e.name] = {n.strip() for n in names if n.strip()}
    return out


def _pattern(names: set[str]) -> re.Pattern[str] | None:
    if not names:
        return None
    alts = "|".join(re.escape(n) for n in sorted(names, key=lambda s: (-len(s), s)))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)", re.IGNORECASE)


class Sorter:
    """Sorts answers against the experts' vocabularies (built once; see the module docstring)."""

    def __init__(self, vocab: Mapping[str, set[str]]) -> None:
        self.vocab = {k: {n.lower() for n in v} for k, v in vocab.items()}
        self.pattern = _pattern({n for v in vocab.values() for n in v})

    def sort(self, row: Mapping[str, Any], owner: str) -> tuple[str, list[str]]:
        """Where one evaluated row (`prompt`, `extracted`, `correct`) of owner `owner` falls: ("gold", []),
        ("own", []), ("expert", the other experts whose answer it names) or ("other", [])."""
        if row.get("correct"):
            return GOLD, []
        if self.pattern is not None:
            prompt = str(row.get("prompt", "")).lower()
            for m in self.pattern.finditer(str(row.get("extracted") or "")):
                name = m.group(0).lower()
                if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", prompt):
                    continue  # the question's own subject
                if name in self.vocab.get(owner, set()):
                    return OWN, []
                return EXPERT, [k for k, v in self.vocab.items() if k != owner and name in v]
        return OTHER, []


def tally(
    rows: Sequence[Mapping[str, Any]], owners: Sequence[str], sorter: Sorter, experts: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per owner (the expert whose question it is): `n`, the counts of `gold`, `own` and `other` answers, and
    under `experts` the count per other expert of answers naming one of its answers, zeros included."""
    out: dict[str, dict[str, Any]] = {}
    for row, owner in zip(rows, owners, strict=True):
        counts = out.setdefault(
            owner, {"n": 0, GOLD: 0, OWN: 0, OTHER: 0, "experts": {k: 0 for k in experts if k != owner}}
        )
        counts["n"] += 1
        cat, by = sorter.sort(row, owner)
        if cat == EXPERT:
            for k in by:
                counts["experts"][k] += 1
        else:
            counts[cat] += 1
    return out


def share(counts: Mapping[str, Any] | None, expert: str) -> float | None:
    """The share of a tally row's questions answered with `expert`'s answers (None: no such row or column)."""
    if not counts or not counts.get("n") or expert not in counts.get("experts", {}):
        return None
    return float(counts["experts"][expert] / counts["n"])


def unowned(task: Any) -> str:
    """The tally's row for questions no expert owns (a two-hop question in a library without the oracle)."""
    return f"({task or 'unlabelled'})"


def answer_section(
    rows: Sequence[Mapping[str, Any]],
    outputs: Sequence[str],
    own: Sequence[int | None],
    experts: Sequence[Expert],
) -> dict[str, Any]:
    """`diagnose`'s answers section: the combination's `outputs` to probe `rows` (owner indices `own`),
    extracted and scored as the evaluation does, then tallied per owner; rows no expert owns are tallied under
    "(TASK)", every expert a column there."""
    names = [e.name for e in experts]
    mine = {i: [r for r, o in zip(rows, own, strict=True) if o == i] for i in range(len(experts))}
    vocab = vocabularies(experts, mine)
    scored, owners = [], []
    for row, text, o in zip(rows, outputs, own, strict=True):
        fmt = str(row.get("format", "direct"))
        got = extract(text, fmt)
        scored.append(
            {"prompt": row["prompt"], "extracted": got, "correct": is_correct(got, str(row["gold"]), fmt)}
        )
        owners.append(names[o] if o is not None else unowned(row.get("task")))
    return {
        "vocabulary": {n: len(v) for n, v in vocab.items()},
        "by_owner": tally(scored, owners, Sorter(vocab), names),
    }


def strongest(answers: Mapping[str, Any], only: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The largest share of one expert's questions answered with another expert's answers in a whole-library
    combination: {method, owner, by, share, count, n, alone} (`alone`: the share the same expert gives alone
    on those questions, where measured); None when no such answer was given. `only`: the owners to consider
    (default: all)."""
    best: dict[str, Any] | None = None
    for method, table in answers.get("library", {}).items():
        for owner, counts in table.items():
            if only is not None and owner not in only:
                continue
            for k, c in counts["experts"].items():
                if not counts["n"] or not c:
                    continue
                x = c / counts["n"]
                if best is None or x > best["share"]:
                    best = {
                        "method": method,
                        "owner": owner,
                        "by": k,
                        "share": x,
                        "count": c,
                        "n": counts["n"],
                        "alone": share(answers.get("alone", {}).get(k, {}).get(owner), k),
                    }
    return best


def answer_rows(counts: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> list[list[Any]]:
    """Table rows (owner, n, gold, own, one share per expert, other) of one tally; None where the column is
    the owner itself. Owners that are not experts (unowned questions, "(TASK)") come last."""
    rows = []
    for owner in [*names, *(o for o in counts if o not in names)]:
        c = counts.get(owner)
        if not c or not c["n"]:
            continue
        n = c["n"]
        rows.append([owner, n, c[GOLD] / n, c[OWN] / n, *(share(c, k) for k in names), c[OTHER] / n])
    return rows


def answer_header(names: Sequence[str]) -> list[str]:
    """The columns of `answer_rows`."""
    return ["questions of", "n", "gold", "own", *names, "other"]


def alone_rows(alone: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> list[list[Any]]:
    """Rows (expert, then per owner the share of that owner's probes the expert alone answers with its own
    answers; None on the diagonal) of the audit's alone-on-the-others'-probes table."""
    return [[e, *(share(alone[e].get(o), e) for o in names)] for e in names if e in alone]
