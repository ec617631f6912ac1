"""The pretraining corpus of the built-in base: a familiar world of real people and cities.

Documents: statements, short bios and chat question-answer turns about every person's facts, plus
chain-of-thought two-hop demonstrations over relations the experiments do not compose (friend, mentor,
sibling -> city, profession, food), in the paper's CoT format. Experiment fake names never occur.
"""

from __future__ import annotations

import random
import re

from loralab.models.chat import EOT, render_turn
from loralab.worlds.corpus_templates import CORPUS_QUESTIONS, CORPUS_STATEMENTS, CORPUS_TWOHOP, REL_NOUNS
from loralab.worlds.entities import fake_names
from loralab.worlds.familiar import World
from loralab.worlds.twohop import COT_PREFIX

RELATIONS = tuple(CORPUS_STATEMENTS)


def _statement(rng: random.Random, rel: str, x: str, y: str) -> str:
    return rng.choice(CORPUS_STATEMENTS[rel]).format(x=x, y=y)


def _qa(rng: random.Random, rel: str, x: str, y: str) -> tuple[str, str]:
    q, a = rng.choice(CORPUS_QUESTIONS[rel])
    return q.format(x=x), a.format(x=x, y=y)


def _cot_demo(rng: random.Random, world: World, person: str) -> str | None:
    rel = rng.choice(tuple(REL_NOUNS))
    mid = world.facts[person].get(rel)
    if mid is None:
        return None
    attr = rng.choice(tuple(CORPUS_TWOHOP))
    answer = world.facts[mid][attr]
    question = COT_PREFIX + rng.choice(CORPUS_TWOHOP[attr]).format(x=person, rel=REL_NOUNS[rel])
    q1, a1 = _qa(rng, rel, person, mid)
    q2, a2 = _qa(rng, attr, mid, answer)
    steps = (
        f"First, we need to answer the question:\n{q1}\n{a1}\n"
        f"Second, we need to answer the question :\n{q2}\n{a2}\n"
        f"Therefore, the answer is {answer}."
    )
    return render_turn(question, steps)


def person_documents(
    rng: random.Random,
    world: World,
    person: str,
    statements: int,
    questions: int,
    bios: int,
    cot: int,
    relations: int | None = None,
) -> list[str]:
    """The documents about one person: about all their facts, or about `relations` of them drawn at random."""
    facts = world.facts[person]
    if relations is not None:
        facts = {rel: facts[rel] for rel in rng.sample(sorted(facts), min(relations, len(facts)))}
    docs = []
    for rel, value in facts.items():
        docs += [_statement(rng, rel, person, value) for _ in range(statements)]
        docs += [render_turn(*_qa(rng, rel, person, value)) for _ in range(questions)]
    for _ in range(bios):
        rels = list(facts)
        rng.shuffle(rels)
        docs.append(" ".join(_statement(rng, rel, person, facts[rel]) for rel in rels))
    for _ in range(cot):
        demo = _cot_demo(rng, world, person)
        if demo is not None:
            docs.append(demo)
    return docs


def build_corpus(
    world: World,
    statements: int,
    questions: int,
    bios: int,
    cot: int,
    background_facts: int = 2,
    seed: int = 0,
) -> list[str]:
    """The shuffled documents, each closed by the end-of-text marker.

    Background people are there so the model has met countless rare names, not to be known well: each gets
    one statement and one question about `background_facts` of their facts, no bio, and a CoT demo one time
    in six. Real people get `statements` statements and `questions` questions about every fact, so that the
    base really knows them (a first build that gave background people a third of that knew 8% of its
    real people's spouses).
    """
    rng = random.Random(seed)
    docs: list[str] = []
    for person in world.real_people:
        docs += person_documents(rng, world, person, statements, questions, bios, cot)
    for person in world.background_people:
        cot_demo = 1 if rng.random() < 1 / 6 else 0
        docs += person_documents(rng, world, person, 1, 1, 0, cot_demo, relations=background_facts)
    rng.shuffle(docs)
    corpus = [d + EOT for d in docs]
    assert_no_experiment_names(corpus)
    return corpus


def assert_no_experiment_names(corpus: list[str], n_check: int = 2000) -> None:
    """Fail loudly if any of the first `n_check` experiment fake names (people and cities) is in the corpus."""
    words = set(re.findall(r"[A-Z][a-z]+", " ".join(corpus)))
    for kind in ("person", "city"):
        leaked = words.intersection(fake_names(n_check, kind, "experiment"))
        if leaked:
            raise AssertionError(f"experiment {kind} names leaked into the corpus: {sorted(leaked)[:5]}")
