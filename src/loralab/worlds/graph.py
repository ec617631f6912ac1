"""The graph suite: a larger library of LoRAs over five relations and their compositions (Appendix A.3).

Three disjoint entity sets, U1 and U2 (people) and U3 (cities); five atomic relations, Rel1, Rel3 and Rel5 in
U1 x U2 and Rel2 and Rel4 in U2 x U3; the six compositions Rel_a -> Rel_b (a in 1, 3, 5; b in 2, 4) from U1 to
U3. Ten experts, one per atomic relation and one per training composition (Rel1->Rel4, Rel3->Rel4, Rel3->Rel2,
Rel5->Rel2, Rel5->Rel4), are combined and tested on the held-out composition Rel1->Rel2.

The paper names no relations; loralab gives them the two-hop suite's, so the held-out composition is F12:

=====  ===========  ===========  =================================================
label  relation     templates    compositions (relation; paper's two-hop name)
=====  ===========  ===========  =================================================
Rel1   spouse_of    F1           Rel1->Rel2 spouse_born_in (F12, held out);
                                 Rel1->Rel4 spouse_study_in (F14)
Rel3   child_of     F5           Rel3->Rel2 child_born_in (F52); Rel3->Rel4 child_study_in
Rel5   roommate_of  graph only   Rel5->Rel2 roommate_born_in; Rel5->Rel4 roommate_study_in
Rel2   born_in      F2
Rel4   study_in     F4
=====  ===========  ===========  =================================================

Two variants, as the paper defines them (read in `src/loralab/worlds/README.md`):

* ``disjoint``: the graph is a union of separate paths u1 -Rel_a-> u2 -Rel_b-> u3, `paths` of them for each of
  the six compositions; no entity is in two paths, so every entity is in exactly one triple of Rel1/3/5 or
  of Rel2/4 (u2 in one of each). A path's three entities share one template split.
* ``shared``: one pool of each set; every u1 has a Rel1, a Rel3 and a Rel5 (three different people of U2),
  every u2 a Rel2 and a Rel4 (two different cities), so every u1 has all six compositions and entities take
  part in many triples. A u1's six composed answers are all different, so no trained composition gives the
  held-out answer away. Each entity has its own template split; a CoT test row's second step can therefore
  repeat a phrasing its U2 entity trained on (its first step, and its question, cannot).

Each relation has 50 templates; every split unit (a path, or an entity) trains on 46 and keeps 2 for dev and
2 for test, as in the two-hop suite. Compositions are written both asked directly and with the paper's
chain of thought; the composition experts train on the CoT form, the form the library is tested in.
Entities are fake (experiment-space names that are neither a template word nor in the built-in base's corpus).
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from loralab.artifacts import atomic_dir, provenance
from loralab.worlds.card import write_dataset
from loralab.worlds.entities import Kind, fake_names
from loralab.worlds.graph_templates import GRAPH_RELATIONS
from loralab.worlds.templates import RELATIONS, TEMPLATES_PER_RELATION, Relation
from loralab.worlds.twohop import COT_PREFIX, MAX_UNITS, MAX_UNITS_WHY, cot_steps, template_split

GENERATOR_VERSION = "graph-1"
GRAPH_VARIANTS: tuple[str, ...] = ("shared", "disjoint")

ATOMIC: dict[str, str] = {
    "Rel1": "spouse_of",
    "Rel2": "born_in",
    "Rel3": "child_of",
    "Rel4": "study_in",
    "Rel5": "roommate_of",
}
FIRST_HOPS = ("Rel1", "Rel3", "Rel5")
"""The relations in U1 x U2."""
SECOND_HOPS = ("Rel2", "Rel4")
"""The relations in U2 x U3."""
Composition = tuple[str, str]
HELD_OUT: Composition = ("Rel1", "Rel2")
TRAINING: tuple[Composition, ...] = (
    ("Rel1", "Rel4"),
    ("Rel3", "Rel4"),
    ("Rel3", "Rel2"),
    ("Rel5", "Rel2"),
    ("Rel5", "Rel4"),
)
"""The five training compositions, in the paper's order."""
COMPOSED: dict[Composition, str] = {
    ("Rel1", "Rel2"): "spouse_born_in",
    ("Rel1", "Rel4"): "spouse_study_in",
    ("Rel3", "Rel2"): "child_born_in",
    ("Rel3", "Rel4"): "child_study_in",
    ("Rel5", "Rel2"): "roommate_born_in",
    ("Rel5", "Rel4"): "roommate_study_in",
}
_RELATIONS: dict[str, Relation] = {**RELATIONS, **GRAPH_RELATIONS}


def label(comp: Composition) -> str:
    return f"{comp[0]}->{comp[1]}"


def task_name(comp: Composition | str, cot: bool = False) -> str:
    """The files' task name: ``rel1`` for an atomic relation, ``rel1_rel2`` (``rel1_rel2_cot``) for a composition."""
    name = comp.lower() if isinstance(comp, str) else f"{comp[0].lower()}_{comp[1].lower()}"
    return f"{name}_cot" if cot else name


_COMPOSITION = re.compile(r"^(rel\d+)_(rel\d+)(_cot)?$")


def hops_of(task: str) -> dict[str, str] | None:
    """A composition's task name -> the two-hop suite's names of the tasks around it, or None for a task that
    is not a composition: ``rel1_rel2_cot`` -> {rel1: ab, rel2: bc, rel1_rel2: ac, rel1_rel2_cot: ac_cot}.
    This is what makes a graph library's experts hop1 / hop2 / oracle of one evaluated composition."""
    found = _COMPOSITION.match(task)
    if found is None:
        return None
    first, second = found.group(1), found.group(2)
    both = f"{first}_{second}"
    return {first: "ab", second: "bc", both: "ac", f"{both}_cot": "ac_cot"}


@cache
def _template_words() -> frozenset[str]:
    words = set()
    for rel in (*ATOMIC.values(), *COMPOSED.values()):
        for q, a in _RELATIONS[rel].templates:
            words |= {w.lower() for w in re.findall(r"[A-Za-z]+", q + " " + a)}
    return frozenset(words)


def graph_names(n: int, kind: Kind, seed: int, avoid: Collection[str] = ()) -> list[str]:
    """`n` experiment-space fake names of `kind`, none a word of the graph suite's templates or in `avoid`."""
    banned = _template_words() | {x.lower() for x in avoid}
    k = n
    while True:
        names = [x for x in fake_names(k, kind, "experiment", seed=seed) if x.lower() not in banned]
        if len(names) >= n:
            return names[:n]
        k += n - len(names) + 16


@dataclass(frozen=True)
class Graph:
    """Entities, edges and split units of one graph."""

    variant: str
    u1: tuple[str, ...]
    u2: tuple[str, ...]
    u3: tuple[str, ...]
    edges: dict[str, dict[str, str]] = field(hash=False)
    """Relation label -> subject -> object."""
    subjects: dict[Composition, list[str]] = field(hash=False)
    """Composition -> the U1 entities it is asked about."""
    unit: dict[str, int] = field(hash=False)
    """Entity of U1 or U2 -> its template-split unit."""

    @property
    def n_units(self) -> int:
        return max(self.unit.values()) + 1


def disjoint_graph(paths: int, seed: int = 0) -> Graph:
    """`paths` separate paths u1 -> u2 -> u3 for each of the six compositions; no entity in two paths."""
    if not 1 <= paths <= MAX_UNITS:
        raise ValueError(f"paths must be between 1 and {MAX_UNITS:,} ({MAX_UNITS_WHY}), not {paths}")
    comps = (HELD_OUT, *TRAINING)
    n = len(comps) * paths
    people = graph_names(2 * n, "person", seed)
    cities = graph_names(n, "city", seed, avoid=people)
    edges: dict[str, dict[str, str]] = {rel: {} for rel in ATOMIC}
    subjects: dict[Composition, list[str]] = {c: [] for c in comps}
    unit: dict[str, int] = {}
    for ci, (a, b) in enumerate(comps):
        for j in range(paths):
            p = ci * paths + j
            u1, u2, u3 = people[p], people[n + p], cities[p]
            edges[a][u1], edges[b][u2] = u2, u3
            subjects[(a, b)].append(u1)
            unit[u1] = unit[u2] = p
    return Graph("disjoint", tuple(people[:n]), tuple(people[n:]), tuple(cities), edges, subjects, unit)


def shared_graph(n1: int, n2: int, n3: int, seed: int = 0) -> Graph:
    """One pool per set: every u1 has Rel1, Rel3 and Rel5 to three different u2, every u2 Rel2 and Rel4 to
    two different u3, and a u1's six composed answers all differ."""
    if n1 < 1 or n2 < len(FIRST_HOPS) or n3 < len(FIRST_HOPS) * len(SECOND_HOPS):
        raise ValueError(f"a shared graph needs |U1| >= 1, |U2| >= 3 and |U3| >= 6, not {n1}, {n2}, {n3}")
    if max(n1, n2, n3) > MAX_UNITS:
        raise ValueError(f"each of |U1|, |U2|, |U3| must be at most {MAX_UNITS:,} ({MAX_UNITS_WHY})")
    people = graph_names(n1 + n2, "person", seed)
    u1, u2, u3 = people[:n1], people[n1:], graph_names(n3, "city", seed, avoid=people)
    rng = random.Random(f"graph-shared-{seed}")
    edges: dict[str, dict[str, str]] = {rel: {} for rel in ATOMIC}
    for x in u2:
        for rel, city in zip(SECOND_HOPS, rng.sample(u3, len(SECOND_HOPS)), strict=True):
            edges[rel][x] = city
    for x in u1:
        for _ in range(10_000):
            mids = rng.sample(u2, len(FIRST_HOPS))
            answers = {edges[b][m] for m in mids for b in SECOND_HOPS}
            if len(answers) == len(FIRST_HOPS) * len(SECOND_HOPS):
                break
        else:
            raise ValueError(f"cannot give {x} six different composed answers with |U3| = {n3}")
        for rel, m in zip(FIRST_HOPS, mids, strict=True):
            edges[rel][x] = m
    unit = {x: i for i, x in enumerate(people)}
    subjects = {c: list(u1) for c in (HELD_OUT, *TRAINING)}
    return Graph("shared", tuple(u1), tuple(u2), tuple(u3), edges, subjects, unit)


def _row(
    task: str, relation: str, lab: str, unit: int, t: int, subject: str, middle: str, **text: str
) -> dict[str, Any]:
    return {
        "id": f"{task}-{unit}-{subject}-{t}",
        "task": task,
        "relation": relation,
        "label": lab,
        "unit": unit,
        "template": t,
        "subject": subject,
        "middle": middle,
        **text,
    }


def atomic_rows(graph: Graph, rel: str, split: list[dict[str, list[int]]], name: str) -> list[dict[str, Any]]:
    """Split `name` of atomic relation `rel` (a label, Rel1 ... Rel5): one row per fact and template."""
    spec = _RELATIONS[ATOMIC[rel]]
    rows = []
    for subject, obj in graph.edges[rel].items():
        unit = graph.unit[subject]
        fill = {spec.subject: subject, spec.target: obj}
        for t in split[unit][name]:
            q, r = spec.templates[t]
            text = {"prompt": q.format(**fill), "answer": r.format(**fill), "gold": obj, "format": "direct"}
            rows.append(_row(task_name(rel), spec.name, rel, unit, t, subject, "", **text))
    return rows


def composition_rows(
    graph: Graph, comp: Composition, split: list[dict[str, list[int]]], name: str, cot: bool
) -> list[dict[str, Any]]:
    """Split `name` of composition `comp`, asked directly or with CoT (hops and question share template t)."""
    a, b = comp
    spec = _RELATIONS[COMPOSED[comp]]
    hop1, hop2 = _RELATIONS[ATOMIC[a]].templates, _RELATIONS[ATOMIC[b]].templates
    rows = []
    for u1 in graph.subjects[comp]:
        u2 = graph.edges[a][u1]
        u3 = graph.edges[b][u2]
        unit = graph.unit[u1]
        fill = {"a": u1, "b": u2, "c": u3}
        for t in split[unit][name]:
            q, r = spec.templates[t]
            if cot:
                text = {
                    "prompt": COT_PREFIX + q.format(**fill),
                    "answer": cot_steps(hop1[t], hop2[t], fill, u3),
                }
            else:
                text = {"prompt": q.format(**fill), "answer": r.format(**fill)}
            text |= {"gold": u3, "format": "cot" if cot else "direct"}
            rows.append(_row(task_name(comp, cot), spec.name, label(comp), unit, t, u1, u2, **text))
    return rows


def graph_files(graph: Graph, split: list[dict[str, list[int]]]) -> dict[str, list[dict[str, Any]]]:
    """Every file: atomic relations and training compositions in all splits, the held-out one in dev/test."""
    files = {}
    for name in ("train", "dev", "test"):
        for rel in ATOMIC:
            files[f"{task_name(rel)}.{name}.jsonl"] = atomic_rows(graph, rel, split, name)
        for comp in (*TRAINING, HELD_OUT):
            if comp == HELD_OUT and name == "train":
                continue
            for cot in (False, True):
                files[f"{task_name(comp, cot)}.{name}.jsonl"] = composition_rows(
                    graph, comp, split, name, cot
                )
    return {k: v for k, v in sorted(files.items()) if v}


def graph_experts() -> dict[str, dict[str, Any]]:
    """The ten experts: one per atomic relation, one per training composition (CoT form)."""
    out = {
        rel: {"mixture": f"{rel} ({ATOMIC[rel]})", "files": [f"{task_name(rel)}.train.jsonl"]}
        for rel in ATOMIC
    }
    for comp in TRAINING:
        out[label(comp)] = {
            "mixture": f"{label(comp)} CoT ({COMPOSED[comp]})",
            "files": [f"{task_name(comp, cot=True)}.train.jsonl"],
        }
    return out


def build_graph(
    out: Path,
    variant: str = "shared",
    *,
    paths: int = 100,
    u1: int = 100,
    u2: int = 100,
    u3: int = 100,
    templates: int = TEMPLATES_PER_RELATION,
    dev_templates: int = 2,
    test_templates: int = 2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write the graph suite's files, card and README into `out`.

    ``disjoint`` uses `paths` (per composition; 6 x paths entities in each of U1, U2 and U3); ``shared`` uses
    the pool sizes `u1`, `u2` and `u3`. The paper gives no sizes; the defaults follow the two-hop suite's
    100 triplets.
    """
    if variant not in GRAPH_VARIANTS:
        raise ValueError(f"unknown graph variant {variant!r}; choose one of {', '.join(GRAPH_VARIANTS)}")
    if not 1 <= templates <= TEMPLATES_PER_RELATION:
        raise ValueError(f"templates must be between 1 and {TEMPLATES_PER_RELATION}, not {templates}")
    graph = disjoint_graph(paths, seed) if variant == "disjoint" else shared_graph(u1, u2, u3, seed)
    split = template_split(graph.n_units, templates, dev_templates, test_templates, seed)
    files = graph_files(graph, split)
    sizes = {"paths": paths} if variant == "disjoint" else {"u1": u1, "u2": u2, "u3": u3}
    counts = {"templates": templates, "dev_templates": dev_templates, "test_templates": test_templates}
    defaults = {"templates": TEMPLATES_PER_RELATION, "dev_templates": 2, "test_templates": 2}
    options = {**sizes, "seed": seed, **{k: v for k, v in counts.items() if v != defaults[k]}}
    command = f"loralab data graph --variant {variant}"
    command += "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items())
    people = "fake people (experiment-space names, not template words, never in the built-in base's corpus)"
    experts = graph_experts()
    card: dict[str, Any] = {
        "dataset": "graph",
        "title": f"Graph suite, {variant} graphs (Rel1 ... Rel5; held out: Rel1->Rel2)",
        "about": (
            f"{len(graph.u1)} entities in U1, {len(graph.u2)} in U2 (people) and {len(graph.u3)} in U3 "
            "(cities); Rel1, Rel3, Rel5 in U1 x U2 and Rel2, Rel4 in U2 x U3; every composition Rel_a -> Rel_b "
            "from U1 to U3, asked directly (`relA_relB`) and with CoT (`relA_relB_cot`). The ten experts are "
            "one per atomic relation and one per training composition; the library is tested on the held-out "
            f"Rel1->Rel2. Each split unit ({'a path' if variant == 'disjoint' else 'an entity'}) trains on "
            f"{templates - dev_templates - test_templates} templates and keeps {dev_templates} for dev and "
            f"{test_templates} for test."
        ),
        "paper": "Appendix A.3, Figure 4, Table 11",
        "command": command,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": {"variant": variant, **sizes, **counts},
        "relations": {rel: ATOMIC[rel] for rel in ATOMIC},
        "compositions": {label(c): COMPOSED[c] for c in (*TRAINING, HELD_OUT)},
        "held_out": label(HELD_OUT),
        "entities": {
            "U1": {"pool": people, "names": sorted(graph.u1)},
            "U2": {"pool": people, "names": sorted(graph.u2)},
            "U3": {
                "pool": "fake cities (experiment-space names, not template words)",
                "names": sorted(graph.u3),
            },
        },
        "template_split": [{"dev": s["dev"], "test": s["test"]} for s in split],
        "experts": experts,
        "libraries": {"10-LoRA": list(experts)},
        "evaluation": {
            "notation": f"{label(HELD_OUT)} CoT ({COMPOSED[HELD_OUT]})",
            "files": [f"{task_name(HELD_OUT, cot=True)}.test.jsonl"],
        },
    }
    meta = {"kind": "dataset", "generator": GENERATOR_VERSION, "seed": seed, **card["config"]}
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        write_dataset(tmp, files, card, {**meta, **provenance()})
    return Path(out)
