"""The two-hop suite: spouse_of (A->B), born_in (B->C) and their composition (A->C).

Variants follow the paper: FF (fake people, fake cities), HH (fake people, real cities) and RR (real people,
real cities, with shuffled relations that contradict what the built-in base was pretrained on). Templates
are split, not items: test phrasings never occur in training.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from loralab.artifacts import atomic_dir, provenance, write_json
from loralab.worlds.entities import fake_names
from loralab.worlds.familiar import FAMILIAR_PEOPLE, build_world
from loralab.worlds.jsonl import write_jsonl
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from loralab.worlds.templates import BIRTH_TEMPLATES, SPOUSE_TEMPLATES, TWOHOP_TEMPLATES

GENERATOR_VERSION = "twohop-1"
Variant = Literal["FF", "HH", "RR"]
VARIANTS: tuple[str, ...] = ("FF", "HH", "RR")
TASKS: tuple[str, ...] = ("ab", "bc", "ac", "ac_cot")
COT_PREFIX = "Answer the following question step-by-step:\n"

Triplet = tuple[str, str, str]


def make_triplets(variant: str, n: int, seed: int = 0) -> list[Triplet]:
    """`n` (A, B, C) triplets with distinct A's and B's (C may repeat, as cities do)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    rng = random.Random(seed)
    if variant == "RR":
        if 2 * n > FAMILIAR_PEOPLE:
            raise ValueError(f"RR needs 2 x {n} familiar people; the built-in base knows {FAMILIAR_PEOPLE}")
        world = build_world(FAMILIAR_PEOPLE, 0, 0)
        people = list(REAL_PEOPLE[:FAMILIAR_PEOPLE])
        while True:  # reshuffle until no pair is the familiar spouse (the relation must be new)
            rng.shuffle(people)
            pairs = list(zip(people[0:n], people[n : 2 * n], strict=True))
            if all(world.facts[a]["spouse"] != b for a, b in pairs):
                break
        return [
            (a, b, rng.choice([c for c in REAL_CITIES if c != world.facts[b]["born_in"]])) for a, b in pairs
        ]
    people = fake_names(2 * n, "person", "experiment", seed=seed)
    cities = list(REAL_CITIES) if variant == "HH" else fake_names(max(n, 20), "city", "experiment", seed=seed)
    return [(people[i], people[n + i], rng.choice(cities)) for i in range(n)]


def template_split(n_templates: int, n_test: int, seed: int) -> dict[str, list[int]]:
    """Which template indices are train and which are test (seeded; the same for every relation)."""
    order = list(range(n_templates))
    random.Random(seed + 7).shuffle(order)
    return {"test": sorted(order[:n_test]), "train": sorted(order[n_test:])}


def cot_answer(a: str, b: str, c: str, t: int) -> str:
    """The paper's Table 5 chain of thought, built from template `t` of each hop."""
    q1, r1 = SPOUSE_TEMPLATES[t]
    q2, r2 = BIRTH_TEMPLATES[t]
    return (
        "First, we need to answer the question:\n"
        f"{q1.format(a=a)}\n{r1.format(a=a, b=b)}\n"
        "Second, we need to answer the question :\n"
        f"{q2.format(b=b)}\n{r2.format(b=b, c=c)}\n"
        f"Therefore, the answer is {c}."
    )


def records(triplets: Iterable[Triplet], task: str, templates: Iterable[int]) -> list[dict[str, Any]]:
    """One JSONL row per (triplet, template) of `task`."""
    rows = []
    for i, (a, b, c) in enumerate(triplets):
        for t in templates:
            if task == "ab":
                q, r = SPOUSE_TEMPLATES[t]
                prompt, answer, gold, fmt = q.format(a=a), r.format(a=a, b=b), b, "direct"
            elif task == "bc":
                q, r = BIRTH_TEMPLATES[t]
                prompt, answer, gold, fmt = q.format(b=b), r.format(b=b, c=c), c, "direct"
            elif task == "ac":
                q, r = TWOHOP_TEMPLATES[t]
                prompt, answer, gold, fmt = q.format(a=a), r.format(a=a, c=c), c, "direct"
            elif task == "ac_cot":
                q, _ = TWOHOP_TEMPLATES[t]
                prompt, answer, gold, fmt = COT_PREFIX + q.format(a=a), cot_answer(a, b, c, t), c, "cot"
            else:
                raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
            rows.append(
                {
                    "id": f"{task}-{i}-{t}",
                    "task": task,
                    "triplet": i,
                    "template": t,
                    "a": a,
                    "b": b,
                    "c": c,
                    "prompt": prompt,
                    "answer": answer,
                    "gold": gold,
                    "format": fmt,
                }
            )
    return rows


def build_twohop(
    out: Path,
    variant: str = "RR",
    n_triplets: int = 100,
    n_test_templates: int = 3,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write `{task}.{split}.jsonl` for every task and split, plus `meta.json`, into the folder `out`."""
    triplets = make_triplets(variant, n_triplets, seed)
    split = template_split(len(SPOUSE_TEMPLATES), n_test_templates, seed)
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        counts = {}
        for task in TASKS:
            for name, templates in split.items():
                rows = records(triplets, task, templates)
                write_jsonl(tmp / f"{task}.{name}.jsonl", rows)
                counts[f"{task}.{name}"] = len(rows)
        write_json(
            tmp / "meta.json",
            {
                "kind": "dataset",
                "generator": GENERATOR_VERSION,
                "variant": variant,
                "n_triplets": n_triplets,
                "seed": seed,
                "templates": split,
                "files": counts,
                **provenance(),
            },
        )
    return Path(out)
