"""Data cards: what a dataset folder says about itself, in `card.json` (for programs) and `README.md` (for people).

Every builder of `loralab.worlds` writes both next to its JSONL files. A card holds: the kind of dataset and
what it is, the command that regenerates it, the generator version and seed, the resolved options, counts and
template ids per file and per split, the entity pools and the names drawn from them, and (for setups and the
graph suite) the experts' training mixtures, the libraries and the evaluation files. Cards hold nothing that
changes from run to run (no time, no git revision: those are in `meta.json`), so a dataset rebuilt from its
seed is byte-identical, card included.

Every JSONL row is a flat JSON object and every row of a file has the same keys, which is what
`datasets.load_dataset("json", data_files=...)` needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loralab.artifacts import read_json, write_json
from loralab.errors import LoralabError
from loralab.worlds.jsonl import write_jsonl

CARD = "card.json"
README = "README.md"
SPLITS = ("train", "dev", "test")

Rows = Sequence[dict[str, Any]]


def split_of(filename: str) -> str:
    """The split a dataset file belongs to, from its name `NAME.SPLIT.jsonl` (train, dev or test)."""
    parts = filename.split(".")
    if len(parts) < 3 or parts[-1] != "jsonl" or parts[-2] not in SPLITS:
        raise ValueError(f"{filename}: dataset files are named NAME.{{train,dev,test}}.jsonl")
    return parts[-2]


def _templates(rows: Rows) -> dict[str, list[int]]:
    out: dict[str, set[int]] = {}
    for r in rows:
        out.setdefault(str(r["relation"]), set()).add(int(r["template"]))
    return {rel: sorted(ids) for rel, ids in sorted(out.items())}


def summarise(files: Mapping[str, Rows]) -> dict[str, Any]:
    """Counts and template ids per file and per split (template ids as a sorted list per relation)."""
    per_file = {
        name: {"split": split_of(name), "rows": len(rows), "templates": _templates(rows)}
        for name, rows in sorted(files.items())
    }
    splits = {}
    for split in SPLITS:
        names = [n for n in per_file if per_file[n]["split"] == split]
        if names:
            rows = [r for n in names for r in files[n]]
            splits[split] = {"files": names, "rows": len(rows), "templates": _templates(rows)}
    return {"files": per_file, "splits": splits}


def dumps(obj: Any, level: int = 0) -> str:
    """JSON with sorted keys, nested objects indented, and lists of plain values kept on one line."""
    pad = "  " * (level + 1)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {dumps(v, level + 1)}" for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (Mapping, list, tuple)) for x in obj):
            return json.dumps(list(obj))
        return "[\n" + ",\n".join(pad + dumps(v, level + 1) for v in obj) + "\n" + "  " * level + "]"
    return json.dumps(obj)


def write_dataset(
    folder: Path, files: Mapping[str, Rows], card: Mapping[str, Any], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write `files` (name -> rows) as JSONL, then `card.json`, `README.md` and `meta.json`, into `folder`.

    The card is `card` plus the counts and template ids of `summarise`; it is returned.
    """
    for name, rows in files.items():
        keys = [list(r) for r in rows]
        if any(k != keys[0] for k in keys):
            raise ValueError(f"{name}: rows with different keys")
        write_jsonl(folder / name, rows)
    full = {**card, **summarise(files)}
    (folder / CARD).write_text(dumps(full) + "\n")
    (folder / README).write_text(render_readme(full))
    write_json(folder / "meta.json", meta)
    return full


def read_card(folder: Path) -> dict[str, Any]:
    """The card of a dataset folder; a folder without one is a `LoralabError` naming it."""
    path = Path(folder) / CARD
    if not path.is_file():
        raise LoralabError(
            f"{folder}: no {CARD} (not a loralab dataset folder, or built before cards existed)"
        )
    card = read_json(path)
    if not isinstance(card, dict) or "dataset" not in card:
        raise LoralabError(f"{path}: not a data card")
    return card


def _entity_lines(entities: Mapping[str, Any]) -> list[str]:
    return [f"- {role}: {len(e['names'])} {e['pool']}" for role, e in entities.items()]


def render_readme(card: Mapping[str, Any]) -> str:
    """A short human-readable page drawn from the card: what it is, how to rebuild it, what is in it."""
    lines = [f"# {card['title']}", "", str(card["about"]), ""]
    lines += [f"Regenerate: `{card['command']}`", ""]
    lines += [f"Generator `{card['generator']}`, seed {card['seed']}. Paper: {card['paper']}.", ""]
    lines += ["| file | split | rows | templates used |", "|---|---|---|---|"]
    for name, f in card["files"].items():
        used = ", ".join(f"{rel} {len(ids)}" for rel, ids in f["templates"].items())
        lines.append(f"| `{name}` | {f['split']} | {f['rows']:,} | {used} |")
    lines.append("")
    if "entities" in card:
        lines += ["Entities:", *_entity_lines(card["entities"]), ""]
    for name, d in card.get("datasets", {}).items():
        lines += [f"Entities of `{name}` ({d['role']}, {d['notation']}):", *_entity_lines(d["entities"]), ""]
    if "experts" in card:
        lines += ["| expert | training mixture | files | rows |", "|---|---|---|---|"]
        for name, e in card["experts"].items():
            rows = sum(card["files"][f]["rows"] for f in e["files"])
            lines.append(f"| {name} | {e['mixture']} | {', '.join(e['files'])} | {rows:,} |")
        lines.append("")
    for name, members in card.get("libraries", {}).items():
        lines.append(f"- library {name}: {', '.join(members)}")
    if "evaluation" in card:
        ev = card["evaluation"]
        lines += ["", f"Evaluation ({ev['notation']}): {', '.join(f'`{f}`' for f in ev['files'])}"]
    if card.get("note"):
        lines += ["", f"Note: {card['note']}"]
    lines += ["", "Check it with `loralab data validate` on this folder.", ""]
    return "\n".join(lines)
