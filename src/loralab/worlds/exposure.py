"""What a built-in base has seen in pretraining: its corpus's entities, words and phrasings.

The built-in bases (`loralab.models.tiny`) are pretrained on a corpus that `loralab.models.corpus` writes from
the familiar world (`familiar.py`) and the corpus templates (`corpus_templates.py`). The experiments rely on
two things it never contains: the experiments' paraphrase templates (two-hop and graph suites) and the
experiments' fake names. This module rebuilds a base preset's corpus text from its generator (about a second
for the default one; no built base is needed) so that `loralab data validate` can check both against a
dataset. It looks downstream, at the base a dataset will be used with, so it imports `loralab.models` lazily.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from loralab.worlds.graph_templates import GRAPH_RELATIONS
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from loralab.worlds.templates import RELATIONS, in_corpus

_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Corpus:
    """The facts of one base preset's corpus that the checks need."""

    base: str
    documents: int
    real_people: int
    background_people: int
    towns: int
    relations: tuple[str, ...]
    words: frozenset[str]
    """Every word of the corpus, lower-cased."""


@cache
def corpus(base: str = "default") -> Corpus:
    """Rebuild the corpus of base preset `base` (as `models.tiny.build_base` does) and summarise it."""
    from loralab.models.corpus import RELATIONS as CORPUS_RELATIONS
    from loralab.models.corpus import build_corpus
    from loralab.models.tiny import BASE_PRESETS
    from loralab.worlds.familiar import build_world

    if base not in BASE_PRESETS:
        raise ValueError(f"unknown base preset {base!r}; choose one of {', '.join(BASE_PRESETS)}")
    p = BASE_PRESETS[base]
    world = build_world(p.n_real, p.n_background, p.n_towns, seed=p.seed)
    docs = build_corpus(world, p.statements, p.questions, p.bios, p.cot, p.background_facts, seed=p.seed)
    words = frozenset(w.lower() for d in docs for w in _WORD.findall(d))
    return Corpus(
        base,
        len(docs),
        len(world.real_people),
        len(world.background_people),
        len(world.cities) - len(REAL_CITIES),
        CORPUS_RELATIONS,
        words,
    )


def is_real(name: str) -> bool:
    """Whether `name` is one of the project's real people or cities (the only entities a corpus may share)."""
    return name in _REAL


_REAL = frozenset(REAL_PEOPLE) | frozenset(REAL_CITIES)


def fake_names_in_corpus(names: set[str], base: str = "default") -> list[str]:
    """The names of `names` that are not real and that have a word in base preset `base`'s corpus."""
    words = corpus(base).words
    return sorted(n for n in names if not is_real(n) and any(w.lower() in words for w in _WORD.findall(n)))


def experiment_relations() -> dict[str, int]:
    """Every experiment relation (two-hop and graph suites) and its number of templates."""
    return {r.name: len(r.templates) for r in (*RELATIONS.values(), *GRAPH_RELATIONS.values())}


def experiment_templates_in_corpus() -> list[str]:
    """Every experiment question or answer that occurs inside a corpus phrasing (`templates.in_corpus`)."""
    found = []
    for r in (*RELATIONS.values(), *GRAPH_RELATIONS.values()):
        for i, (q, a) in enumerate(r.templates):
            found += [
                f"{r.name}[{i}] {kind}: {t!r}" for kind, t in (("question", q), ("answer", a)) if in_corpus(t)
            ]
    return found
