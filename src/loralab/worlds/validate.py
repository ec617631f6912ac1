"""`loralab data validate`: check a dataset folder against what its design promises.

Checks (each reported on its own; a failure names the file and the problem):

* card: `card.json` lists exactly the JSONL files present, with their row counts;
* format: every row is a flat JSON object with prompt, answer, gold and format, the rows of a file share
  their keys (what `datasets.load_dataset("json")` needs) and their ids are unique;
* answers: a direct answer names its gold exactly once and a CoT answer ends with "Therefore, the answer is
  GOLD."; no prompt names its gold (names of other entities that contain the gold, such as a person called
  Washington, are set aside first);
* templates: no split unit (a triplet, a graph path or entity) trains on a template it is tested or
  developed on; the graph's held-out composition has no training row at all;
* entities: what the kind of dataset requires: distinct A's and B's (two-hop); bridges disjoint from the
  evaluated triplets and from each other (setups) or from the excluded names (bridges); each entity in one
  path only (disjoint graphs) and U1, U2, U3 disjoint (graphs);
* corpus names: no fake name of the dataset has a word in the built-in base's corpus (`--base`);
* corpus templates: no experiment template (two-hop and graph suites) occurs inside a corpus phrasing.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.artifacts import META, read_json_object
from loralab.errors import LoralabError
from loralab.worlds import exposure
from loralab.worlds.card import read_card, split_of
from loralab.worlds.jsonl import read_jsonl

REQUIRED = ("prompt", "answer", "gold", "format")
ENTITY_FIELDS = ("a", "b", "c", "subject", "middle", "gold")
KIND_FIELDS = {
    "twohop": ("triplet", "a", "b", "c"),
    "bridge": ("triplet", "a", "b", "c", "dataset"),
    "setup": ("triplet", "a", "b", "c", "dataset"),
    "graph": ("unit", "label", "subject", "middle"),
}
Rows = list[dict[str, Any]]


@dataclass
class Check:
    name: str
    detail: str = ""
    problems: list[str] = field(default_factory=list)
    """Each one `FILE: problem`."""


@dataclass
class Validation:
    path: Path
    kind: str
    checks: list[Check]

    @property
    def problems(self) -> list[str]:
        return [p for c in self.checks for p in c.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"{self.path} ({self.kind} dataset)"]
        for c in self.checks:
            status = "ok  " if not c.problems else f"FAIL ({len(c.problems)})"
            out.append(f"  {status} {c.name}: {c.problems[0] if c.problems else c.detail}")
        return out


def _row_problems(path: Path, rows: Rows, kind: str) -> list[str]:
    """What keeps a file's rows from being one flat table of this kind of dataset."""
    keys = list(rows[0])
    missing = [k for k in ("id", "template", *KIND_FIELDS.get(kind, ())) if k not in keys]
    if missing:
        return [f"{path}: rows lack the field(s) {', '.join(missing)} of a {kind} dataset"]
    problems = []
    for i, row in enumerate(rows, 1):
        nested = [k for k, v in row.items() if isinstance(v, (dict, list))]
        if nested:
            problems.append(f"{path}:{i}: field(s) {', '.join(nested)} are not flat values")
        elif list(row) != keys:
            problems.append(f"{path}:{i}: keys differ from the first row's ({', '.join(keys)})")
        elif row["format"] not in ("direct", "cot"):
            problems.append(f"{path}:{i}: format {row['format']!r} is neither direct nor cot")
    ids = [r["id"] for r in rows]
    if not problems and len(set(ids)) != len(ids):
        problems.append(f"{path}: ids are not unique")
    return problems


def _load(folder: Path, kind: str) -> tuple[dict[str, Rows], Check]:
    """The rows of every well-formed JSONL file (the others are reported and left out of later checks)."""
    files: dict[str, Rows] = {}
    check = Check("format")
    for path in sorted(folder.glob("*.jsonl")):
        try:
            split_of(path.name)
            rows = read_jsonl(path, REQUIRED)
        except (LoralabError, ValueError) as exc:
            check.problems.append(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}")
            continue
        problems = _row_problems(path, rows, kind)
        check.problems += problems
        if not problems:
            files[path.name] = rows
    check.detail = f"{sum(map(len, files.values())):,} rows in {len(files)} files, flat, same keys per file"
    return files, check


def _card_check(folder: Path, card: dict[str, Any], files: dict[str, Rows]) -> Check:
    check = Check("card", f"{folder / 'card.json'} lists every file and its row count; meta.json is whole")
    meta = folder / META
    if meta.is_file():  # provenance, and what tells --overwrite the folder is loralab's
        try:
            kind = read_json_object(meta).get("kind")
        except LoralabError as exc:
            check.problems.append(str(exc))
        else:
            if kind not in ("dataset", "subset"):  # subset: a run's half of a dataset (Table 10)
                check.problems.append(
                    f"{meta}: kind {kind!r}, not a dataset's (damaged? it is written by loralab)"
                )
    listed = card.get("files", {})
    present = {p.name for p in folder.glob("*.jsonl")}
    for name in sorted(set(listed) | present):
        if name not in present:
            check.problems.append(f"{folder / name}: listed in card.json but missing")
        elif name not in listed:
            check.problems.append(f"{folder / name}: not listed in card.json")
        elif name in files and listed[name]["rows"] != len(files[name]):
            check.problems.append(
                f"{folder / name}: {len(files[name])} rows, card.json says {listed[name]['rows']}"
            )
    return check


def _others(row: dict[str, Any]) -> list[str]:
    """The row's entity names other than its gold, longest first."""
    names = {str(row[k]) for k in ENTITY_FIELDS if k != "gold" and row.get(k)} - {row["gold"]}
    return sorted(names, key=len, reverse=True)


def _count(name: str, text: str, others: Iterable[str]) -> int:
    for other in others:
        text = text.replace(other, " ")
    return len(re.findall(rf"(?<!\w){re.escape(name)}(?!\w)", text))


def _answer_check(folder: Path, files: dict[str, Rows]) -> Check:
    check = Check("answers", "every answer names its gold as designed, no prompt names it")
    for name, rows in files.items():
        for i, r in enumerate(rows, 1):
            gold, others = r["gold"], _others(r)
            if r["format"] == "cot":
                if not r["answer"].endswith(f"Therefore, the answer is {gold}."):
                    check.problems.append(
                        f"{folder / name}:{i}: CoT answer does not end with its gold {gold!r}"
                    )
            elif _count(gold, r["answer"], others) != 1:
                check.problems.append(
                    f"{folder / name}:{i}: answer does not name its gold {gold!r} exactly once"
                )
            if _count(gold, r["prompt"], others):
                check.problems.append(f"{folder / name}:{i}: prompt names the gold {gold!r}")
    return check


def _unit(row: dict[str, Any]) -> tuple[str, Any]:
    return (str(row.get("dataset", "")), row.get("triplet", row.get("unit")))


def _template_check(folder: Path, card: dict[str, Any], files: dict[str, Rows]) -> Check:
    check = Check("templates")
    train: dict[tuple[str, Any], set[int]] = defaultdict(set)
    held: dict[tuple[str, Any], dict[int, str]] = defaultdict(dict)
    for name, rows in files.items():
        for r in rows:
            if split_of(name) == "train":
                train[_unit(r)].add(r["template"])
            else:
                held[_unit(r)].setdefault(r["template"], name)
    for unit, templates in held.items():
        leaked = sorted(set(templates) & train[unit])
        if leaked:
            where = f"{unit[0]} " if unit[0] else ""
            check.problems.append(
                f"{folder / templates[leaked[0]]}: {where}unit {unit[1]} trains on its held-out template(s) {leaked}"
            )
    if "held_out" in card:
        for name, rows in files.items():
            if split_of(name) == "train" and any(r.get("label") == card["held_out"] for r in rows):
                check.problems.append(
                    f"{folder / name}: trains on the held-out composition {card['held_out']}"
                )
    check.detail = f"{len(held)} held-out units, 0 held-out templates in their training rows"
    return check


def _people(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {r[k] for r in rows for k in ("a", "b") if r.get(k)}


def _fake_cities(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {r["c"] for r in rows if r.get("c") and not exposure.is_real(r["c"])}


def _overlap(folder: Path, name: str, what: str, a: set[str], b: set[str]) -> list[str]:
    common = sorted(a & b)
    return [f"{folder / name}: {what} share {len(common)} name(s), e.g. {common[0]!r}"] if common else []


def _triplet_problems(where: Path, what: str, rows: Rows) -> list[str]:
    """A's distinct, B's distinct, and no one both an A and a B."""
    by_triplet: dict[Any, tuple[str, str]] = {}
    for r in rows:
        by_triplet.setdefault(r["triplet"], (r["a"], r["b"]))
    a = [x for x, _ in by_triplet.values()]
    b = [y for _, y in by_triplet.values()]
    cities = {r["c"] for r in rows}
    problems = []
    if len(set(a)) < len(a) or len(set(b)) < len(b):
        problems.append(f"{where}: two triplets of {what} share an A or a B")
    problems += _overlap(where.parent, where.name, f"A's and B's of {what}", set(a), set(b))
    return problems + _overlap(
        where.parent, where.name, f"people and cities of {what}", set(a) | set(b), cities
    )


def _by_dataset(files: dict[str, Rows]) -> tuple[dict[str, Rows], dict[str, str]]:
    """Rows grouped by their `dataset` field ("" if none), and the first file each dataset occurs in."""
    groups: dict[str, Rows] = defaultdict(list)
    first: dict[str, str] = {}
    for name, rows in files.items():
        for r in rows:
            key = str(r.get("dataset", ""))
            groups[key].append(r)
            first.setdefault(key, name)
    return dict(groups), first


def _twohop_entities(folder: Path, files: dict[str, Rows]) -> list[str]:
    groups, first = _by_dataset(files)
    return [
        p
        for d, rows in groups.items()
        for p in _triplet_problems(folder / first[d], d or "the dataset", rows)
    ]


def _setup_entities(folder: Path, files: dict[str, Rows]) -> list[str]:
    problems = _twohop_entities(folder, files)
    groups, first = _by_dataset(files)
    names = sorted(groups)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            rows_x, rows_y = groups[x], groups[y]
            problems += _overlap(folder, first[y], f"people of {x} and {y}", _people(rows_x), _people(rows_y))
            what = f"fake cities of {x} and {y}"
            problems += _overlap(folder, first[y], what, _fake_cities(rows_x), _fake_cities(rows_y))
    return problems


def _bridge_entities(folder: Path, card: dict[str, Any], files: dict[str, Rows]) -> list[str]:
    excluded = set(card.get("excluded", {}).get("names", []))
    problems = _twohop_entities(folder, files)
    for name, rows in files.items():
        problems += _overlap(
            folder, name, "bridge and excluded", _people(rows) | _fake_cities(rows), excluded
        )
    return problems


def _graph_entities(folder: Path, card: dict[str, Any], files: dict[str, Rows]) -> list[str]:
    first = {"Rel1", "Rel3", "Rel5"}
    sets: dict[str, set[str]] = {"U1": set(), "U2": set(), "U3": set()}
    facts: dict[str, set[tuple[str, str, str]]] = {"first": set(), "second": set()}
    for rows in files.values():
        for r in rows:
            if r["middle"]:
                continue
            hop = "first" if r["label"] in first else "second"
            facts[hop].add((r["label"], r["subject"], r["gold"]))
            sets["U1" if hop == "first" else "U2"].add(r["subject"])
            sets["U2" if hop == "first" else "U3"].add(r["gold"])
    problems = []
    where = next(iter(sorted(files)), "")
    for x, y in (("U1", "U2"), ("U1", "U3"), ("U2", "U3")):
        problems += _overlap(folder, where, f"{x} and {y}", sets[x], sets[y])
    if card.get("config", {}).get("variant") == "disjoint":
        for hop, triples in facts.items():
            seen: dict[str, int] = defaultdict(int)
            for _, subject, obj in triples:
                seen[subject] += 1
                seen[obj] += 1
            shared = sorted(n for n, k in seen.items() if k > 1)
            if shared:
                problems.append(f"{folder / where}: {shared[0]!r} is in {seen[shared[0]]} {hop}-hop triples")
    return problems


def _entity_check(folder: Path, kind: str, card: dict[str, Any], files: dict[str, Rows]) -> Check:
    if kind == "setup":
        problems, detail = _setup_entities(folder, files), "datasets draw disjoint people and fake cities"
    elif kind == "bridge":
        problems, detail = _bridge_entities(folder, card, files), "no excluded name is drawn"
    elif kind == "graph":
        problems, detail = _graph_entities(folder, card, files), "U1, U2, U3 disjoint"
        if card.get("config", {}).get("variant") == "disjoint":
            detail += "; every entity in one path"
    else:
        problems, detail = _twohop_entities(folder, files), "distinct A's and B's"
    return Check("entities", detail, problems)


def _corpus_checks(folder: Path, files: dict[str, Rows], base: str) -> list[Check]:
    where: dict[str, str] = {}  # each name -> the first file it occurs in
    for name, rows in files.items():
        for r in rows:
            for k in ENTITY_FIELDS:
                if r.get(k):
                    where.setdefault(str(r[k]), name)
    fake = {n for n in where if not exposure.is_real(n)}
    found = exposure.fake_names_in_corpus(fake, base)
    info = exposure.corpus(base)
    names_check = Check(
        "corpus names",
        f"0 of {len(fake)} fake names in the {base} base's corpus ({info.documents:,} documents)",
        [f"{folder / where[n]}: fake name {n!r} occurs in the {base} base's corpus" for n in found],
    )
    relations = exposure.experiment_relations()
    templates_check = Check(
        "corpus templates",
        f"0 of {2 * sum(relations.values())} experiment questions and answers ({len(relations)} relations) "
        "occur in a corpus phrasing",
        [f"{folder}: {t} occurs in the corpus" for t in exposure.experiment_templates_in_corpus()],
    )
    return [names_check, templates_check]


def validate_dataset(path: Path, base: str = "default") -> Validation:
    """Run every check on the dataset folder `path`, against base preset `base`'s corpus."""
    folder = Path(path)
    if not folder.is_dir():
        raise LoralabError(f"{folder}: not a dataset folder")
    card = read_card(folder)
    kind = str(card["dataset"])
    if not any(folder.glob("*.jsonl")):
        raise LoralabError(f"{folder}: no JSONL files")
    files, fmt = _load(folder, kind)
    if not files:  # nothing well-formed to check further
        return Validation(folder, kind, [_card_check(folder, card, files), fmt])
    checks: Sequence[Check] = [
        _card_check(folder, card, files),
        fmt,
        _answer_check(folder, files),
        _template_check(folder, card, files),
        _entity_check(folder, kind, card, files),
        *_corpus_checks(folder, files, base),
    ]
    return Validation(folder, kind, list(checks))
