"""GSM-Symbolic datasets: levels symbolic / P1 / P2 drawn from templates, and the released JSONL format.

The paper's protocol (Section 4.2, Appendix A.4): experts are fine-tuned on the base level and on P1, and
the combination is evaluated on P2, whose problems no expert saw. Per template this draws 50 distinct
instances of each fine-tuning level, split 40 train / 5 dev / 5 test, and 2 instances of P2 for the test.

Rows follow the project's JSONL convention (`prompt`, `answer` = the training target, `gold`, `id`, `task`),
so `loralab.experts.train.train_expert` trains on them as they are; `format` is "gsm" (a numeric final
answer), `solution` says which target `answer` holds: "cot" (the worked solution) or "code" (the family's
Python functions, see `solutions.py`), and `steps` counts the arithmetic operations of the template's
`#answer` (its computation graph: a solution with fewer steps has skipped one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from loralab.artifacts import atomic_dir, provenance, read_json, write_json
from loralab.errors import LoralabError
from loralab.gsm.solutions import (
    GRAPHS,
    CodeFunction,
    code_solution,
    computation_steps,
    cot_solution,
    families,
)
from loralab.gsm.templates import (
    DEFAULT_TRIES,
    LEVELS,
    Instance,
    NoInstance,
    Template,
    format_number,
    instantiate,
    load_templates,
    parse_number,
)
from loralab.worlds.jsonl import write_jsonl

GENERATOR_VERSION = "gsm-1"
SPLITS = {"train": 40, "dev": 5, "test": 5}
"""Instances per template of a fine-tuning level (symbolic, p1), by split."""
P2_PER_TEMPLATE = 2
"""P2 instances per template: the unseen evaluation."""
FINETUNE_LEVELS = ("symbolic", "p1")
SOLUTIONS = ("cot", "code")
_FINAL = re.compile(r"####\s*(.+?)\s*$")
_SPARE_SEEDS = 5


def own_templates_dir() -> Path:
    """The project's own small templates (10 problem families at every level, small numbers)."""
    return Path(__file__).parent / "own_templates"


def distinct_instances(
    template: Template, n: int, seed: int | str = 0, max_tries: int = DEFAULT_TRIES
) -> list[Instance]:
    """`n` instances with pairwise different questions, instance k drawn with seed "SEED:LEVEL/NNNN:k".

    A seed that finds no instance within `max_tries` draws is passed over (a template whose conditions
    rarely hold), up to `_SPARE_SEEDS` times; a template whose solution disagrees with `#answer` fails at once."""
    out: list[Instance] = []
    seen: set[str] = set()
    draws = spare = 0
    while len(out) < n:
        if draws >= 20 * n:
            raise LoralabError(
                f"{template.source}: only {len(out)} distinct questions in {draws} draws ({n} wanted)"
            )
        try:
            instance = instantiate(template, f"{seed}:{template.id}:{draws}", max_tries)
        except NoInstance as exc:
            spare += 1
            if exc.mismatches or spare > _SPARE_SEEDS:
                raise
            continue
        finally:
            draws += 1
        if instance.question not in seen:
            seen.add(instance.question)
            out.append(instance)
    return out


def gsm_row(
    instance: Instance,
    index: int,
    split: str,
    solution: str = "cot",
    code: Sequence[CodeFunction] = (),
    graph: str = "level",
) -> dict[str, Any]:
    """One JSONL row: the question as `prompt`, the chosen solution as `answer`, the number as `gold`."""
    template = instance.template
    if solution == "cot":
        target = cot_solution(instance)
    elif solution == "code":
        target = code_solution(instance, code, graph)
    else:
        raise LoralabError(f"solution {solution!r}: choose one of {', '.join(SOLUTIONS)}")
    return {
        "id": f"{template.level}-{template.number:04d}-{split}-{index}",
        "task": template.level,
        "family": template.family,
        "template": template.number,
        "instance": index,
        "prompt": instance.question,
        "answer": target,
        "gold": instance.gold,
        "format": "gsm",
        "solution": solution,
        "steps": len(computation_steps(template)),
    }


class GsmFiles(NamedTuple):
    files: dict[str, list[dict[str, Any]]]
    """`LEVEL.SPLIT.jsonl` -> rows."""
    skipped: list[str]
    """Templates left out because their solution disagrees with their `#answer` (`skip_inconsistent`)."""


def gsm_files(
    templates: Mapping[str, Sequence[Template]],
    seed: int = 0,
    solution: str = "cot",
    graph: str = "level",
    max_tries: int = DEFAULT_TRIES,
    skip_inconsistent: bool = False,
) -> GsmFiles:
    """The rows of every file: symbolic and p1 with train/dev/test, p2 with test only.

    `skip_inconsistent`: leave out a template whose worked solution never agrees with its `#answer` (four
    of the released ones) instead of failing."""
    if graph not in GRAPHS:
        raise LoralabError(f"graph {graph!r}: choose one of {', '.join(GRAPHS)}")
    code = families(templates) if solution == "code" else {}
    files: dict[str, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    for level in LEVELS:
        if not templates.get(level):
            continue
        sizes = SPLITS if level in FINETUNE_LEVELS else {"test": P2_PER_TEMPLATE}
        for template in templates[level]:
            try:
                drawn = distinct_instances(template, sum(sizes.values()), seed, max_tries)
            except NoInstance as exc:
                if not (skip_inconsistent and exc.mismatches):
                    raise
                skipped.append(template.id)
                continue
            start = 0
            for split, size in sizes.items():
                rows = files.setdefault(f"{level}.{split}.jsonl", [])
                for k, instance in enumerate(drawn[start : start + size], start):
                    rows.append(gsm_row(instance, k, split, solution, code.get(template.family, ()), graph))
                start += size
    return GsmFiles(files, skipped)


def build_gsm(
    out: Path | str,
    templates: Path | str | None = None,
    seed: int = 0,
    solution: str = "cot",
    graph: str = "level",
    skip_inconsistent: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write the `LEVEL.SPLIT.jsonl` files and `meta.json` of one GSM dataset into the folder `out`.

    `templates`: a folder with `symbolic/`, `p1/`, `p2/` template files (default: the project's own)."""
    root = Path(templates) if templates is not None else own_templates_dir()
    by_level = load_templates(root)
    files, skipped = gsm_files(by_level, seed, solution, graph, skip_inconsistent=skip_inconsistent)
    if not any(files.values()):
        raise LoralabError(
            f"--templates {root}: no question could be drawn ({len(skipped)} template(s) skipped as "
            "inconsistent); nothing written"
        )
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        for name, rows in files.items():
            write_jsonl(tmp / name, rows)
        meta = {
            "generator": GENERATOR_VERSION,
            "kind": "gsm",
            "templates": str(root),
            "seed": seed,
            "solution": solution,
            "graph": graph,
            "skip_inconsistent": skip_inconsistent,
            "splits": {**SPLITS, "p2": P2_PER_TEMPLATE},
            "counts": {name: len(rows) for name, rows in files.items()},
            "families": sorted({t.family for ts in by_level.values() for t in ts}),
            "skipped": skipped,
            **provenance(),
        }
        write_json(tmp / "meta.json", meta)
    return Path(out)


def ensure_gsm(out: Path | str, **options: Any) -> Path:
    """`out` if it already holds this generator's dataset with these options, else (re)built there."""
    meta_path = Path(out) / "meta.json"
    if meta_path.is_file():
        meta = read_json(meta_path)
        root = options.get("templates")
        wanted = {
            "generator": GENERATOR_VERSION,
            "templates": str(Path(root) if root is not None else own_templates_dir()),
            "seed": options.get("seed", 0),
            "solution": options.get("solution", "cot"),
            "graph": options.get("graph", "level"),
            "skip_inconsistent": options.get("skip_inconsistent", False),
        }
        if all(meta.get(k) == v for k, v in wanted.items()):
            return Path(out)
    return build_gsm(Path(out), **{**options, "overwrite": True})


FORMATS: dict[str, tuple[str, str]] = {
    "cot": ("cot", "level"),
    "code": ("code", "level"),
    "code-whole": ("code", "whole"),
}
"""The easy-to-hard experiment's fine-tuning formats -> (solution, code graph): worked natural-language
solutions; the family's reusable functions up to the instance's level; every level's functions (the
paper's "whole computation graph" code)."""
EXPERIMENT_VERSION = "gsm-exp-1"
EXPERIMENT_FILES = (
    *(f"{lv}.{s}.jsonl" for lv in FINETUNE_LEVELS for s in ("train", "test")),
    "p2.test.jsonl",
)


def templates_root(source: str) -> Path:
    """The template folder a spec's `source` names: 'own' (the project's families) or a folder."""
    if source == "own":
        return own_templates_dir()
    root = Path(source)
    if not root.is_dir():
        raise LoralabError(f"source {source}: not a folder with symbolic/ p1/ p2/ templates")
    return root


def build_experiment_data(out: Path, spec: Mapping[str, Any]) -> Path:
    """The easy-to-hard experiment's dataset (a spec's `kind: gsm`) in fine-tuning format `spec["format"]`:
    `symbolic.train/test` and `p1.train/test` (the first `train_per_template` of the 40 training instances
    per template) and `p2.test` with `p2_per_template` instances per template (the first 2 are the standard
    dataset's P2 questions). Released templates whose solution disagrees with `#answer` are left out."""
    from loralab.gsm.solutions import families

    own = spec["source"] == "own"
    root = templates_root(spec["source"])
    solution, graph = FORMATS[spec["format"]]
    by_level = load_templates(root)
    files = gsm_files(by_level, spec["seed"], solution, graph, skip_inconsistent=not own).files
    rows: dict[str, list[dict[str, Any]]] = {}
    for level in FINETUNE_LEVELS:
        train = files.get(f"{level}.train.jsonl", [])
        rows[f"{level}.train.jsonl"] = [r for r in train if r["instance"] < spec["train_per_template"]]
        rows[f"{level}.test.jsonl"] = files.get(f"{level}.test.jsonl", [])
    code = families(by_level) if solution == "code" else {}
    p2 = []
    for template in by_level.get("p2", []):
        try:
            drawn = distinct_instances(template, spec["p2_per_template"], spec["seed"])
        except LoralabError:
            if own:
                raise
            continue
        p2 += [
            gsm_row(x, k, "test", solution, code.get(template.family, ()), graph) for k, x in enumerate(drawn)
        ]
    rows["p2.test.jsonl"] = p2
    with atomic_dir(out, overwrite=True) as tmp:
        for name, content in rows.items():
            write_jsonl(tmp / name, content)
        counts = {name: len(content) for name, content in rows.items()}
        meta = {"generator": EXPERIMENT_VERSION, "kind": "gsm", "templates": str(root), **spec}
        write_json(tmp / "meta.json", {**meta, "counts": counts, **provenance()})
    return out


# ----------------------------------------------------------------------------------------------------------
# The released format


def _level_of(path: Path) -> str | None:
    stem = path.stem.lower()
    return next((lv for lv in ("p1", "p2", "symbolic") if stem.endswith(lv)), None)


def read_released(path: Path | str, level: str | None = None) -> list[dict[str, Any]]:
    """Rows of a GSM-Symbolic JSONL release (`GSM_symbolic.jsonl`, `GSM_p1.jsonl`, `GSM_p2.jsonl`: fields
    id, instance, question, answer ending `#### N`, original_id, ...) in the project's row format.

    The level comes from the file name unless given. A line without a question or answer, or whose answer
    has no `#### N`, is a `LoralabError` naming the file and line."""
    path = Path(path)
    level = level or _level_of(path)
    if level not in LEVELS:
        raise LoralabError(f"{path}: cannot tell the level from the name; pass one of {', '.join(LEVELS)}")
    if not path.is_file():
        raise LoralabError(f"{path}: file not found")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LoralabError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            rows.append(_released_row(raw, level, f"{path}:{lineno}"))
    if not rows:
        raise LoralabError(f"{path}: no rows")
    return rows


def _released_row(raw: Any, level: str, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise LoralabError(f"{where}: each line must be a JSON object")
    for key in ("question", "answer"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise LoralabError(f"{where}: no {key!r}")
    for key in ("id", "instance"):
        if not isinstance(raw.get(key), int):
            raise LoralabError(f"{where}: {key!r} must be an integer")
    lines = raw["answer"].rstrip().splitlines()
    final = _FINAL.search(lines[-1]) if lines else None
    number = parse_number(final.group(1)) if final else None
    if number is None:
        raise LoralabError(f"{where}: the answer does not end with '#### N'")
    gold = format_number(round(number) if number.is_integer() else number, "decimal")
    return {
        "id": f"{level}-{raw['id']:04d}-{raw['instance']}",
        "task": level,
        "family": f"gsm{raw['id']:04d}",
        "template": raw["id"],
        "instance": raw["instance"],
        "prompt": raw["question"],
        "answer": raw["answer"],
        "gold": gold,
        "format": "gsm",
        "solution": "cot",
        "original_id": raw.get("original_id"),
    }
