"""The two-hop suite: two one-hop relations A -> B -> C and their composition A -> C.

Three chains, as in the paper (Section 4.1, Table 4): ``spouse_born_in`` (spouse_of F1, born_in F2, composed
F12; the default), ``spouse_study_in`` (F1, study_in F4, F14) and ``child_born_in`` (child_of F5, F2, F52).
Variants follow the paper: FF (fake people, fake cities), HH (fake people, real cities) and RR (real people,
real cities, with relations that contradict what the built-in base was pretrained on).

Each relation has 50 templates (`loralab.worlds.templates`). The split is per triplet by template, as in the
paper's Appendix A.2.1: each triplet draws its own 2 dev and 2 test templates and trains on the other 46,
so a triplet's test phrasings never occur in its training rows (the same phrasings do train other triplets).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loralab.artifacts import atomic_dir, provenance, read_json
from loralab.worlds.card import write_dataset
from loralab.worlds.entities import fake_names
from loralab.worlds.familiar import CITY_RELATIONS, FAMILIAR_PEOPLE, PERSON_RELATIONS, World, build_world
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from loralab.worlds.templates import QA, RELATION_TEMPLATES, RELATIONS, TEMPLATES_PER_RELATION

GENERATOR_VERSION = "twohop-3"
"""twohop-3: rows as in twohop-2, plus `card.json` and `README.md` in every folder."""
Variant = Literal["FF", "HH", "RR"]
VARIANTS: tuple[str, ...] = ("FF", "HH", "RR")
TASKS: tuple[str, ...] = ("ab", "bc", "ac", "ac_cot")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
COT_PREFIX = "Answer the following question step-by-step:\n"

Triplet = tuple[str, str, str]


@dataclass(frozen=True)
class Chain:
    """A -> B by `first`, B -> C by `second`, and A -> C by `composed` (relation names of `RELATIONS`)."""

    first: str
    second: str
    composed: str

    @property
    def name(self) -> str:
        return self.composed

    def relation(self, task: str) -> str:
        """The relation whose templates phrase `task` (ab, bc, ac or ac_cot)."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        return {"ab": self.first, "bc": self.second}.get(task, self.composed)

    def notation(self, variant: str) -> dict[str, str]:
        """The paper's names of the chain's subsets in `variant`: ab, bc and ac to e.g. R1, R2, R12."""
        return {task: variant[0] + RELATIONS[self.relation(task)].notation[1:] for task in ("ab", "bc", "ac")}


CHAINS: dict[str, Chain] = {
    c.name: c
    for c in (
        Chain("spouse_of", "born_in", "spouse_born_in"),
        Chain("spouse_of", "study_in", "spouse_study_in"),
        Chain("child_of", "born_in", "child_born_in"),
    )
}
DEFAULT_CHAIN = "spouse_born_in"
# The most triplets (or graph units) a dataset may have: 100 times the paper's 100. A two-hop dataset of
# 1,000 FF triplets is 74 MB and 7 s to write; an unbounded count filled the disk before it said anything.
MAX_UNITS = 10_000
MAX_UNITS_WHY = "100 times the paper's 100; 1,000 triplets already write 74 MB"


def _chain(relations: str) -> Chain:
    if relations not in CHAINS:
        raise ValueError(f"unknown relations {relations!r}; choose one of {', '.join(CHAINS)}")
    return CHAINS[relations]


def _familiar(world: World, person: str, relation: str) -> set[str]:
    """What the familiar world already says about `person` that an RR fact of `relation` must not repeat.

    spouse_of and born_in must contradict the person's familiar spouse and birth city; the familiar world has
    no child_of or study_in, so those must only avoid the people (or cities) already tied to the person.
    """
    facts = world.facts[person]
    keys = {
        "spouse_of": ("spouse",),
        "born_in": ("born_in",),
        "child_of": PERSON_RELATIONS,
        "study_in": CITY_RELATIONS,
    }[relation]
    return {facts[k] for k in keys if k in facts}


def make_triplets(
    variant: str,
    n: int,
    seed: int = 0,
    relations: str = DEFAULT_CHAIN,
    exclude: Collection[str] = (),
) -> list[Triplet]:
    """`n` (A, B, C) triplets with distinct A's and B's (C may repeat, as cities do).

    No person in `exclude` is drawn, nor a fake city in it (real cities are a small pool that triplets share
    anyway, so they are not excluded). With nothing excluded the draw is the same as without the argument, so
    a bridge built apart from some evaluated triplets leaves every other dataset as it was.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    chain = _chain(relations)
    if not 1 <= n <= MAX_UNITS:
        raise ValueError(f"must be between 1 and {MAX_UNITS:,} ({MAX_UNITS_WHY})")
    rng = random.Random(seed)
    banned = set(exclude)
    if variant == "RR":
        world = build_world(FAMILIAR_PEOPLE, 0, 0)
        people = [p for p in REAL_PEOPLE[:FAMILIAR_PEOPLE] if p not in banned]
        if 2 * n > len(people):
            left = f"; {len(people)} of them are not excluded" if banned else ""
            raise ValueError(
                f"RR needs 2 x {n} familiar people; the built-in base knows {FAMILIAR_PEOPLE}{left}"
            )
        while True:  # reshuffle until no pair is already related in the familiar world (the fact must be new)
            rng.shuffle(people)
            pairs = list(zip(people[0:n], people[n : 2 * n], strict=True))
            if all(b not in _familiar(world, a, chain.first) for a, b in pairs):
                break
        return [
            (a, b, rng.choice([c for c in REAL_CITIES if c not in _familiar(world, b, chain.second)]))
            for a, b in pairs
        ]
    # fake_names(k) is the first k of fake_names(k + m): drawing extra and dropping the excluded keeps the draw
    drawn = fake_names(2 * n + len(banned), "person", "experiment", seed=seed)
    people = [p for p in drawn if p not in banned][: 2 * n]
    if variant == "HH":
        cities = list(REAL_CITIES)
    else:
        # a city never takes a drawn person's name (the two name kinds can produce the same word)
        taken = banned | set(people)
        drawn = fake_names(max(n, 20) + len(taken), "city", "experiment", seed=seed)
        cities = [c for c in drawn if c not in taken][: max(n, 20)]
    return [(people[i], people[n + i], rng.choice(cities)) for i in range(n)]


def template_split(
    n_triplets: int,
    n_templates: int = TEMPLATES_PER_RELATION,
    n_dev: int = 2,
    n_test: int = 2,
    seed: int = 0,
) -> list[dict[str, list[int]]]:
    """Per triplet, which template indices are train, dev and test (the paper's 46 / 2 / 2 of 50).

    Each triplet's choice is its own seeded draw, so it does not depend on how many triplets there are; the
    same split serves every task of the triplet, so a CoT test row's steps are test phrasings too.
    """
    if n_dev < 0 or n_test < 1 or n_dev + n_test >= n_templates:
        raise ValueError(
            f"cannot split {n_templates} templates into {n_dev} dev, {n_test} test and the rest train"
        )
    out = []
    for i in range(n_triplets):
        order = list(range(n_templates))
        random.Random(f"twohop-split-{seed}-{i}").shuffle(order)
        dev, test, train = order[:n_dev], order[n_dev : n_dev + n_test], order[n_dev + n_test :]
        out.append({"train": sorted(train), "dev": sorted(dev), "test": sorted(test)})
    return out


def cot_steps(first: QA, second: QA, fill: Mapping[str, str], answer: str) -> str:
    """The paper's Table 5 chain of thought: ask and answer hop 1, then hop 2, then give `answer`."""
    q1, r1 = first
    q2, r2 = second
    return (
        "First, we need to answer the question:\n"
        f"{q1.format(**fill)}\n{r1.format(**fill)}\n"
        "Second, we need to answer the question :\n"
        f"{q2.format(**fill)}\n{r2.format(**fill)}\n"
        f"Therefore, the answer is {answer}."
    )


def cot_answer(a: str, b: str, c: str, t: int, relations: str = DEFAULT_CHAIN) -> str:
    """The chain of thought of triplet (a, b, c), built from template `t` of each hop."""
    chain = _chain(relations)
    first, second = RELATION_TEMPLATES[chain.first][t], RELATION_TEMPLATES[chain.second][t]
    return cot_steps(first, second, {"a": a, "b": b, "c": c}, c)


def records(
    triplets: Sequence[Triplet],
    task: str,
    templates: Sequence[Iterable[int]],
    relations: str = DEFAULT_CHAIN,
) -> list[dict[str, Any]]:
    """One JSONL row per triplet and template of `task`: triplet i gets the template indices `templates[i]`."""
    chain = _chain(relations)
    relation = chain.relation(task)
    target = RELATIONS[relation].target
    rows = []
    for i, ((a, b, c), indices) in enumerate(zip(triplets, templates, strict=True)):
        fill = {"a": a, "b": b, "c": c}
        for t in indices:
            q, r = RELATION_TEMPLATES[relation][t]
            if task == "ac_cot":
                prompt, answer, fmt = COT_PREFIX + q.format(**fill), cot_answer(a, b, c, t, relations), "cot"
            else:
                prompt, answer, fmt = q.format(**fill), r.format(**fill), "direct"
            rows.append(
                {
                    "id": f"{task}-{i}-{t}",
                    "task": task,
                    "relation": relation,
                    "triplet": i,
                    "template": t,
                    "a": a,
                    "b": b,
                    "c": c,
                    "prompt": prompt,
                    "answer": answer,
                    "gold": fill[target],
                    "format": fmt,
                }
            )
    return rows


@dataclass(frozen=True)
class TwohopData:
    """One generated two-hop dataset, in memory: its triplets, their template split and its files' rows."""

    variant: str
    relations: str
    seed: int
    triplets: list[Triplet]
    split: list[dict[str, list[int]]]
    files: dict[str, list[dict[str, Any]]]
    """`TASK.SPLIT.jsonl` -> rows (a split of size 0 has no file)."""

    @property
    def people(self) -> set[str]:
        return {x for a, b, _ in self.triplets for x in (a, b)}

    @property
    def fake_cities(self) -> set[str]:
        return {c for _, _, c in self.triplets if c not in REAL_CITIES}

    def entities(self) -> dict[str, dict[str, Any]]:
        """The entity pools of the card: A's, B's and C's, each with its pool and the names drawn."""
        people = {
            "FF": "fake people (experiment-space names, never in the built-in base's corpus)",
            "HH": "fake people (experiment-space names, never in the built-in base's corpus)",
            "RR": f"real people the default built-in base knows (the first {FAMILIAR_PEOPLE} of pools.REAL_PEOPLE)",
        }[self.variant]
        cities = (
            "fake cities (experiment-space names)"
            if self.variant == "FF"
            else "real cities (pools.REAL_CITIES)"
        )
        return {
            "A": {"pool": people, "names": sorted({a for a, _, _ in self.triplets})},
            "B": {"pool": people, "names": sorted({b for _, b, _ in self.triplets})},
            "C": {"pool": cities, "names": sorted({c for _, _, c in self.triplets})},
        }


def generate_twohop(
    variant: str = "RR",
    n_triplets: int = 100,
    *,
    relations: str = DEFAULT_CHAIN,
    templates: int = TEMPLATES_PER_RELATION,
    dev_templates: int = 2,
    test_templates: int = 2,
    seed: int = 0,
    exclude: Collection[str] = (),
) -> TwohopData:
    """The rows of every task and split (see `build_twohop`), drawn on entities outside `exclude`."""
    if not 1 <= templates <= TEMPLATES_PER_RELATION:
        raise ValueError(f"templates must be between 1 and {TEMPLATES_PER_RELATION}, not {templates}")
    triplets = make_triplets(variant, n_triplets, seed, relations, exclude)
    split = template_split(n_triplets, templates, dev_templates, test_templates, seed)
    files = {}
    for task in TASKS:
        for name in SPLITS:
            rows = records(triplets, task, [s[name] for s in split], relations)
            if rows:
                files[f"{task}.{name}.jsonl"] = rows
    return TwohopData(variant, relations, seed, triplets, split, files)


def twohop_command(variant: str, n_triplets: int, relations: str, seed: int, **templates: int) -> str:
    """The `loralab data twohop` command line that builds this dataset."""
    cmd = f"loralab data twohop --variant {variant} --triplets {n_triplets} --seed {seed}"
    if relations != DEFAULT_CHAIN:
        cmd += f" --relations {relations}"
    defaults = {"templates": TEMPLATES_PER_RELATION, "dev_templates": 2, "test_templates": 2}
    for key, value in templates.items():
        if value != defaults[key]:
            cmd += f" --{key.replace('_', '-')} {value}"
    return cmd


def build_twohop(
    out: Path,
    variant: str = "RR",
    n_triplets: int = 100,
    *,
    relations: str = DEFAULT_CHAIN,
    templates: int = TEMPLATES_PER_RELATION,
    dev_templates: int = 2,
    test_templates: int = 2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write `{task}.{train,dev,test}.jsonl` for every task, plus `meta.json`, `card.json` and `README.md`.

    `templates` uses the first that many templates of each relation (all 50 by default); each triplet keeps
    `dev_templates` and `test_templates` of them apart and trains on the rest. With the defaults, 100
    triplets give 4,600 / 200 / 200 rows per task. A split of size 0 writes no file.
    """
    chain = _chain(relations)
    counts = {"templates": templates, "dev_templates": dev_templates, "test_templates": test_templates}
    data = generate_twohop(
        variant,
        n_triplets,
        relations=relations,
        templates=templates,
        dev_templates=dev_templates,
        test_templates=test_templates,
        seed=seed,
    )
    per = {
        "per_relation": templates,
        "train": templates - dev_templates - test_templates,
        "dev": dev_templates,
        "test": test_templates,
    }
    notation = chain.notation(variant)
    card = {
        "dataset": "twohop",
        "title": f"Two-hop {variant}, {relations} ({notation['ab']}, {notation['bc']}, {notation['ac']})",
        "about": (
            f"{n_triplets} (A, B, C) triplets: A -> B by {chain.first} ({notation['ab']}, task ab), B -> C by "
            f"{chain.second} ({notation['bc']}, task bc), and the composition A -> C by {chain.composed} "
            f"({notation['ac']}: task ac asks it directly, ac_cot with the paper's chain of thought). Each "
            f"triplet trains on {per['train']} of the first {templates} templates of each relation and keeps "
            f"{dev_templates} for dev and {test_templates} for test (its own draw; `template_split`)."
        ),
        "paper": "Section 4.1 and Appendix A.2.1, Tables 4 and 5",
        "command": twohop_command(variant, n_triplets, relations, seed, **counts),
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": {"variant": variant, "relations": relations, "n_triplets": n_triplets, "templates": per},
        "tasks": {task: chain.relation(task) for task in TASKS},
        "notation": notation,
        "entities": data.entities(),
        # per triplet (in row order): its dev and test template indices; the others are its train ones
        "template_split": [{"dev": s["dev"], "test": s["test"]} for s in data.split],
    }
    meta = {
        "kind": "dataset",
        "generator": GENERATOR_VERSION,
        "variant": variant,
        "relations": relations,
        "tasks": card["tasks"],
        "notation": notation,
        "n_triplets": n_triplets,
        "seed": seed,
        "templates": per,
        "split": card["template_split"],
        "files": {name.removesuffix(".jsonl"): len(rows) for name, rows in data.files.items()},
        **provenance(),
    }
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        write_dataset(tmp, data.files, card, meta)
    return Path(out)


def ensure_twohop(out: Path, variant: str = "RR", n_triplets: int = 100, **options: Any) -> Path:
    """`out` if it already holds this generator's dataset with these settings, else (re)built there."""
    meta_path = Path(out) / "meta.json"
    if meta_path.is_file():
        meta = read_json(meta_path)
        wanted = {"variant": variant, "n_triplets": n_triplets, "seed": options.get("seed", 0)}
        wanted["relations"] = options.get("relations", DEFAULT_CHAIN)
        per = meta.get("templates", {})
        same_templates = (
            per.get("per_relation") == options.get("templates", TEMPLATES_PER_RELATION)
            and per.get("dev") == options.get("dev_templates", 2)
            and per.get("test") == options.get("test_templates", 2)
        )
        if (
            meta.get("generator") == GENERATOR_VERSION
            and same_templates
            and all(meta.get(k) == v for k, v in wanted.items())
        ):
            return Path(out)
    return build_twohop(Path(out), variant, n_triplets, **{**options, "overwrite": True})
