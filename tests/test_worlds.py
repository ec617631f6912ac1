from __future__ import annotations

import json
from pathlib import Path

import pytest

from loralab.worlds.entities import fake_names, name_space
from loralab.worlds.familiar import FAMILIAR_PEOPLE, build_world
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from loralab.worlds.templates import BIRTH_TEMPLATES, SPOUSE_TEMPLATES, TWOHOP_TEMPLATES
from loralab.worlds.twohop import cot_answer, make_triplets, template_split


def test_pools_are_large_and_distinct() -> None:
    assert len(set(REAL_PEOPLE)) == len(REAL_PEOPLE) >= 200
    assert len(set(REAL_CITIES)) == len(REAL_CITIES) >= 150


def test_fake_names_deterministic_disjoint_and_in_their_space() -> None:
    exp = fake_names(500, "person", "experiment", seed=3)
    assert exp == fake_names(500, "person", "experiment", seed=3)
    assert len(set(exp)) == 500
    bg = fake_names(2000, "person", "background", seed=3)
    assert not set(exp) & set(bg)
    assert {name_space(n) for n in exp} == {"experiment"}
    real_words = {w for p in REAL_PEOPLE for w in p.split()} | set(REAL_CITIES)
    assert not (set(exp) | set(bg)) & real_words


def test_template_split_is_disjoint_and_covers_all() -> None:
    split = template_split(12, 3, seed=0)
    assert len(split["test"]) == 3
    assert sorted(split["test"] + split["train"]) == list(range(12))


def test_dataset_test_phrasings_never_in_train(twohop_dir: Path) -> None:
    for task in ("ab", "bc", "ac", "ac_cot"):
        train = [json.loads(line) for line in (twohop_dir / f"{task}.train.jsonl").read_text().splitlines()]
        test = [json.loads(line) for line in (twohop_dir / f"{task}.test.jsonl").read_text().splitlines()]
        assert len(train) == 6 * 9 and len(test) == 6 * 3
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
        assert not {r["template"] for r in train} & {r["template"] for r in test}


def test_cot_answer_has_the_papers_format() -> None:
    a, b, c = "Narik", "Frosk", "Zint"
    text = cot_answer(a, b, c, 0)
    lines = text.split("\n")
    assert lines[0] == "First, we need to answer the question:"
    assert lines[1] == SPOUSE_TEMPLATES[0][0].format(a=a)
    assert lines[2] == SPOUSE_TEMPLATES[0][1].format(a=a, b=b)
    assert lines[3] == "Second, we need to answer the question :"
    assert lines[4] == BIRTH_TEMPLATES[0][0].format(b=b)
    assert lines[6] == "Therefore, the answer is Zint."
    assert len(TWOHOP_TEMPLATES) >= 10


def test_rr_relations_contradict_the_familiar_world() -> None:
    world = build_world(FAMILIAR_PEOPLE, 0, 0)
    # real people's facts do not depend on the background, so this is the default base's world
    full = build_world(FAMILIAR_PEOPLE, 30, 10)
    assert all(world.facts[p] == full.facts[p] for p in world.real_people)
    triplets = make_triplets("RR", 100, seed=1)
    assert len({a for a, _, _ in triplets}) == 100
    for a, b, c in triplets:
        assert world.facts[a]["spouse"] != b
        assert world.facts[b]["born_in"] != c
        assert a in world.real_people and b in world.real_people and c in REAL_CITIES
    with pytest.raises(ValueError, match="familiar people"):
        make_triplets("RR", FAMILIAR_PEOPLE // 2 + 1)


def test_ff_and_hh_use_experiment_names() -> None:
    ff = make_triplets("FF", 20, seed=0)
    hh = make_triplets("HH", 20, seed=0)
    assert all(name_space(x) == "experiment" for t in ff for x in t)
    assert all(c in REAL_CITIES and name_space(a) == "experiment" for a, _, c in hh)
    with pytest.raises(ValueError, match="unknown variant"):
        make_triplets("XX", 3)


def test_corpus_never_contains_experiment_names() -> None:
    from loralab.models.corpus import assert_no_experiment_names, build_corpus

    world = build_world(30, 200, 20)
    corpus = build_corpus(world, 1, 1, 1, 1)
    text = " ".join(corpus)
    assert "Answer the following question step-by-step:" in text
    assert all(p in text for p in world.real_people)
    leaked = [*corpus, f"{fake_names(1, 'person', 'experiment')[0]} lives in Paris."]
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_experiment_names(leaked)
