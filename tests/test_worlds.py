from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from loralab.worlds.entities import fake_names, name_space
from loralab.worlds.familiar import FAMILIAR_PEOPLE, build_world
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from loralab.worlds.templates import (
    BIRTH_TEMPLATES,
    RELATION_TEMPLATES,
    RELATIONS,
    SPOUSE_TEMPLATES,
    TWOHOP_TEMPLATES,
    check_templates,
    template_problems,
)
from loralab.worlds.twohop import TASKS, build_twohop, cot_answer, make_triplets, records, template_split


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


def test_every_relation_has_50_valid_templates() -> None:
    assert {name: len(t) for name, t in RELATION_TEMPLATES.items()} == {
        "spouse_of": 50,
        "born_in": 50,
        "spouse_born_in": 50,
        "study_in": 50,
        "child_of": 50,
        "spouse_study_in": 50,
        "child_born_in": 50,
    }
    assert [RELATIONS[n].notation for n in RELATIONS] == ["F1", "F2", "F12", "F4", "F5", "F14", "F52"]
    for name, templates in RELATION_TEMPLATES.items():
        assert template_problems(name, templates) == [], name
    check_templates()
    # the old names still work, and index 0 is the paper's Table 4 example
    assert SPOUSE_TEMPLATES is RELATION_TEMPLATES["spouse_of"]
    assert BIRTH_TEMPLATES is RELATION_TEMPLATES["born_in"]
    assert TWOHOP_TEMPLATES is RELATION_TEMPLATES["spouse_born_in"]
    assert SPOUSE_TEMPLATES[0] == (
        "Who stands as {a}'s wedded partner?",
        "{b} is recognized as {a}'s lawful companion in marriage.",
    )
    assert RELATION_TEMPLATES["study_in"][0] == ("Where does {b} study?", "{b} studies in {c}.")
    assert RELATION_TEMPLATES["child_born_in"][0] == (
        "Where was {a}'s child born?",
        "{a}'s child was born in {c}.",
    )


def test_template_validation_catches_bad_templates() -> None:
    bad = [
        ("Who is {a}'s spouse?", "{a}'s spouse is {b}."),  # fine on its own
        ("WHO is {a}'s   spouse?", "{b}, yes, {b}."),  # duplicate question; target twice
        ("Who married {b}?", "{a} married {x}."),  # names the target, not the subject; {x}; no target
        ("Who did {a} tie the knot with?", "{a} tied the knot with {b}."),  # the corpus's phrasing
        ("Where does {a}'s friend live?", "Lives in {b}"),  # a corpus two-hop question; no final period
        ("Who is {a", "{b}."),  # not a format string
    ]
    problems = template_problems("spouse_of", bad)
    assert problems[0] == "spouse_of: 6 templates, expected 50"
    found = {(p.split("]", 1)[0], p.split(": ")[1]) for p in problems[1:]}
    assert found == {
        ("spouse_of[1", "answer names {b} 2 times, not once"),
        ("spouse_of[1", "question duplicates template 0"),
        ("spouse_of[2", "answer uses placeholder(s) {x}"),
        ("spouse_of[2", "question does not name {a}"),
        ("spouse_of[2", "question names the target {b}"),
        ("spouse_of[2", "answer names {b} 0 times, not once"),
        ("spouse_of[3", "question is a corpus phrasing"),
        ("spouse_of[3", "answer is a corpus phrasing"),
        ("spouse_of[4", "question is a corpus phrasing"),
        ("spouse_of[4", "answer does not end with '.'"),
        ("spouse_of[4", "answer occurs in a corpus phrasing"),  # "{x} lives in {y}."
        ("spouse_of[5", "question is not a valid format string"),
        ("spouse_of[5", "answer occurs in a corpus phrasing"),  # a bare name occurs everywhere
    }
    # an experiment phrasing inside a longer corpus one ("{x} and {y} have been married for many years.")
    inside = [("Who is {a} married to, and since when?", "{a} and {b} have been married.")]
    assert [p.split(": ")[1] for p in template_problems("spouse_of", inside, n=1)] == [
        "answer occurs in a corpus phrasing"
    ]
    assert template_problems("spouse_of", bad[:1], n=1) == []


def test_template_split_is_per_triplet_46_2_2() -> None:
    split = template_split(100, seed=0)
    assert len(split) == 100
    for s in split:
        assert (len(s["train"]), len(s["dev"]), len(s["test"])) == (46, 2, 2)
        assert sorted(s["train"] + s["dev"] + s["test"]) == list(range(50))
    assert len({tuple(s["test"]) for s in split}) > 50  # each triplet draws its own
    assert split == template_split(100, seed=0)
    assert split != template_split(100, seed=1)
    assert template_split(10, seed=0) == split[:10]  # a triplet's draw does not depend on how many there are
    small = template_split(3, 12, 1, 3, seed=0)
    assert [(len(s["train"]), len(s["dev"]), len(s["test"])) for s in small] == [(8, 1, 3)] * 3
    with pytest.raises(ValueError, match="cannot split"):
        template_split(3, 4, 2, 2)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_full_dataset_has_the_papers_sizes_and_split(tmp_path: Path) -> None:
    out = build_twohop(tmp_path / "ff", "FF", 100, seed=3)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["generator"] == "twohop-3" and meta["notation"] == {"ab": "F1", "bc": "F2", "ac": "F12"}
    assert meta["templates"] == {"per_relation": 50, "train": 46, "dev": 2, "test": 2}
    for task in TASKS:
        rows = {name: _rows(out / f"{task}.{name}.jsonl") for name in ("train", "dev", "test")}
        assert [len(rows[n]) for n in ("train", "dev", "test")] == [4600, 200, 200]
        assert len({(r["triplet"], r["template"]) for n in rows for r in rows[n]}) == 5000
        for i in range(100):
            train = {r["template"] for r in rows["train"] if r["triplet"] == i}
            test = {r["template"] for r in rows["test"] if r["triplet"] == i}
            dev = {r["template"] for r in rows["dev"] if r["triplet"] == i}
            assert len(train) == 46 and not train & test and not train & dev and not dev & test
            assert sorted(test) == meta["split"][i]["test"] and sorted(dev) == meta["split"][i]["dev"]
    for r in _rows(out / "ab.test.jsonl") + _rows(out / "bc.train.jsonl") + _rows(out / "ac.dev.jsonl"):
        # a direct answer names its gold exactly once, and the question never does
        gold = rf"\b{re.escape(r['gold'])}\b"
        assert len(re.findall(gold, r["answer"])) == 1 and not re.search(gold, r["prompt"])
    again = build_twohop(tmp_path / "again", "FF", 100, seed=3)
    for name in sorted(p.name for p in out.glob("*.jsonl")):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_dataset_test_phrasings_never_in_train(twohop_dir: Path) -> None:
    for task in TASKS:
        train = _rows(twohop_dir / f"{task}.train.jsonl")
        test = _rows(twohop_dir / f"{task}.test.jsonl")
        assert len(train) == 6 * 9 and len(test) == 6 * 2
        assert max(r["template"] for r in train + test) < 12
        assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
        assert not {(r["triplet"], r["template"]) for r in train} & {
            (r["triplet"], r["template"]) for r in test
        }


def test_cot_answer_is_the_papers_table_5() -> None:
    assert cot_answer("Narik", "Frosk", "Zint", 0) == (
        "First, we need to answer the question:\n"
        "Who stands as Narik's wedded partner?\n"
        "Frosk is recognized as Narik's lawful companion in marriage.\n"
        "Second, we need to answer the question :\n"
        "What is Frosk's official place of birth?\n"
        "Frosk's earliest recorded presence was in Zint.\n"
        "Therefore, the answer is Zint."
    )
    assert cot_answer("Dabix", "Frosk", "Zint", 0, "child_born_in") == (
        "First, we need to answer the question:\n"
        "Who is the child of Dabix?\n"
        "Frosk is the child of Dabix.\n"
        "Second, we need to answer the question :\n"
        "What is Frosk's official place of birth?\n"
        "Frosk's earliest recorded presence was in Zint.\n"
        "Therefore, the answer is Zint."
    )
    row = records([("Narik", "Frosk", "Zilan")], "ac_cot", [[0]], "spouse_study_in")[0]
    assert row["prompt"] == "Answer the following question step-by-step:\nWhere does Narik's spouse study?"
    assert row["answer"].split("\n")[3:] == [
        "Second, we need to answer the question :",
        "Where does Frosk study?",
        "Frosk studies in Zilan.",
        "Therefore, the answer is Zilan.",
    ]
    assert (row["gold"], row["format"], row["relation"]) == ("Zilan", "cot", "spouse_study_in")


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
    # the default chain draws what it drew before the other chains existed (checked against twohop-1)
    assert triplets[0] == ("Orville Wright", "Justin Trudeau", "Auckland")
    # child_of and study_in are new to the familiar world: B is none of A's people, C none of B's cities
    for a, b, _ in make_triplets("RR", 100, seed=1, relations="child_born_in"):
        assert b not in {world.facts[a][r] for r in ("spouse", "friend", "mentor", "sibling")}
    for _, b, c in make_triplets("RR", 100, seed=1, relations="spouse_study_in"):
        assert c not in {world.facts[b][r] for r in ("born_in", "lives_in", "works_in")}
    with pytest.raises(ValueError, match="unknown relations"):
        make_triplets("RR", 3, relations="sibling_born_in")


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


@pytest.mark.parametrize("variant", ["FF", "HH", "RR"])
def test_every_variant_and_chain_has_100_x_46_training_rows_per_relation(variant: str) -> None:
    from loralab.worlds.twohop import CHAINS, generate_twohop

    for chain in CHAINS:
        data = generate_twohop(variant, 100, relations=chain, seed=0)
        counts = {name: len(rows) for name, rows in data.files.items()}
        assert counts == {
            f"{t}.{s}.jsonl": n for t in TASKS for s, n in (("train", 4600), ("dev", 200), ("test", 200))
        }
        for task in TASKS:
            relation = CHAINS[chain].relation(task)
            assert {r["relation"] for r in data.files[f"{task}.train.jsonl"]} == {relation}
        train = {(r["triplet"], r["template"]) for r in data.files["ab.train.jsonl"]}
        held = {
            (r["triplet"], r["template"]) for s in ("dev", "test") for r in data.files[f"ac_cot.{s}.jsonl"]
        }
        assert len(train) == 4600 and not train & held  # 0 template overlap between train and test
        people = {x for a, b, _ in data.triplets for x in (a, b)}
        assert len(people) == 200 and not people & {c for *_, c in data.triplets}


def test_twohop_folder_regenerates_byte_identically(tmp_path: Path) -> None:
    a = build_twohop(tmp_path / "a", "HH", 5, relations="child_born_in", seed=4)
    b = build_twohop(tmp_path / "b", "HH", 5, relations="child_born_in", seed=4)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"card.json", "README.md", "meta.json"} <= set(names)
    for name in names:
        if name != "meta.json":  # the one file with the build time and git revision
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert "created" in json.loads((a / "meta.json").read_text())
