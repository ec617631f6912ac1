"""Familiarity probes: true facts, answer matching, name log-probabilities by hand, the cache, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from loralab.probes import familiarity as fam
from loralab.probes.facts import (
    ANSWERS,
    BIRTHPLACES,
    COUNTRIES,
    SPOUSES,
    mentions,
    public_facts,
)
from loralab.worlds.familiar import FAMILIAR_PEOPLE
from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE
from tests.conftest import run_cli


def test_facts_are_about_the_projects_real_entities() -> None:
    assert set(SPOUSES) <= set(REAL_PEOPLE)
    assert set(BIRTHPLACES) <= set(REAL_PEOPLE)
    assert set(COUNTRIES) <= set(REAL_CITIES)
    for answers in ANSWERS.values():
        assert all(gold and all(g.strip() for g in gold) for gold in answers.values())
    facts = public_facts(REAL_PEOPLE + REAL_CITIES)
    assert len(facts) == len(SPOUSES) + len(BIRTHPLACES) + len(COUNTRIES)
    # a question never gives its own answer away (e.g. Florence Nightingale, born in Florence, is left out)
    assert not [f for f in facts if mentions(f.question, f.gold)]


def test_mentions_whole_words_ignoring_case_accents_and_punctuation() -> None:
    assert mentions("She married Mileva Marić in 1903.", ("Mileva",))
    assert mentions("It lies in the U.S.", ("United States", "U.S."))
    assert mentions("born in WÜRZBURG", ("Wurzburg",))
    assert not mentions("An Ulmer family.", ("Ulm",))
    assert not mentions("Japanese", ("Japan",))
    assert not mentions("anything", ("", " "))


def test_score_counts_answers_that_mention_the_gold() -> None:
    facts = public_facts(["Albert Einstein", "Paris", "Brakon"])
    assert [(f.subject, f.relation) for f in facts] == [
        ("Albert Einstein", "spouse"),
        ("Albert Einstein", "born_in"),
        ("Paris", "country"),
    ]
    answers = ["He married Elsa.", "He was born in Munich.", "Paris is the capital of France."]
    ok = fam.score(facts, answers)
    assert ok == [True, False, True]
    assert fam._rate(ok) == {"n": 3, "correct": 2, "accuracy": 2 / 3}
    assert fam._rate([]) is None


def test_pools_real_and_fake() -> None:
    pools = fam.pools()
    sizes = {name: len(p.names) for name, p in pools.items()}
    assert sizes == {
        "real_people": FAMILIAR_PEOPLE,
        "real_people_other": len(REAL_PEOPLE) - FAMILIAR_PEOPLE,
        "real_cities": len(REAL_CITIES),
        "fake_people": FAMILIAR_PEOPLE,
        "fake_cities": len(REAL_CITIES),
    }
    fake = set(pools["fake_people"].names) | set(pools["fake_cities"].names)
    assert not fake & (set(REAL_PEOPLE) | set(REAL_CITIES))


def test_name_logprob_is_the_sum_over_its_tokens(tiny_base: Path) -> None:
    from loralab.models.load import load_base

    model, tok = load_base(tiny_base)
    context = fam.context_ids(tok)
    assert context == [tok.convert_tokens_to_ids("<|endoftext|>")]
    prefixes = [c[:k] for c in REAL_CITIES for k in range(2, len(c) + 1)]
    two = next(n for n in prefixes if len(tok(n, add_special_tokens=False)["input_ids"]) == 2)
    long = max(REAL_PEOPLE, key=lambda n: len(tok(n, add_special_tokens=False)["input_ids"]))
    t1, t2 = tok(two, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[*context, t1, t2]])).logits[0]
    by_hand = logits[0].log_softmax(-1)[t1] + logits[1].log_softmax(-1)[t2]
    # alone, and batched beside a longer name (right padding must not change it)
    alone = fam.name_logprobs(model, tok, [two], context)
    batched = fam.name_logprobs(model, tok, [long, two], context)
    assert alone[0][1] == batched[1][1] == 2
    assert alone[0][0] == pytest.approx(float(by_hand), abs=1e-4)
    assert batched[1][0] == pytest.approx(float(by_hand), abs=1e-4)


def test_corpus_facts_only_for_a_built_in_base(tiny_base: Path, tmp_path: Path) -> None:
    from loralab.artifacts import read_json
    from loralab.worlds.familiar import build_world

    facts = fam.corpus_facts(tiny_base)
    n_real = read_json(tiny_base / "meta.json")["config"]["n_real"]
    assert len(facts) == 2 * n_real
    world = build_world(n_real, 0, 0)
    first = facts[0]
    assert first.subject == REAL_PEOPLE[0] and first.gold == (world.facts[REAL_PEOPLE[0]]["spouse"],)
    assert fam.corpus_facts(tmp_path) == []


@pytest.fixture
def small_pools(monkeypatch: pytest.MonkeyPatch) -> dict[str, fam.Pool]:
    """The first 6 names of each pool (the full probe asks about 800 questions: minutes on 2 cores)."""
    full = fam.pools()
    small = {k: dataclasses.replace(p, names=p.names[:6]) for k, p in full.items()}
    monkeypatch.setattr(fam, "pools", lambda: small)
    return small


def test_probe_on_the_test_base(tiny_base: Path, small_pools: dict[str, fam.Pool]) -> None:
    result = fam.probe(tiny_base)
    pools = result["pools"]
    assert set(pools) == set(small_pools) and pools["real_people"]["names"] == 6
    # the first 6 real people: Einstein, Newton, Curie, Darwin, Galileo, Tesla; 6 birthplaces and 3 spouses
    # (Newton, Galileo and Tesla never married); the first 6 cities, Paris ... Vienna, each have a country
    assert pools["real_people"]["public_facts"]["n"] == 6 + 3
    assert pools["real_cities"]["public_facts"]["n"] == 6
    assert pools["real_people"]["corpus_facts"]["n"] == 2 * 6  # all 6 are among the test base preset's 40
    assert pools["real_cities"]["corpus_facts"] is None
    assert pools["fake_people"]["public_facts"] is None and pools["fake_cities"]["corpus_facts"] is None
    answers = result["answers"]
    assert len(answers) == sum(
        (e["public_facts"] or {"n": 0})["n"] + (e["corpus_facts"] or {"n": 0})["n"] for e in pools.values()
    )
    assert all(a["correct"] == mentions(a["answer"], tuple(a["gold"])) for a in answers)
    corpus = [a for a in answers if a["source"] == "corpus"]
    assert pools["real_people"]["corpus_facts"]["correct"] == sum(a["correct"] for a in corpus)
    for entry in pools.values():
        assert entry["logprob_per_token"] < 0 and entry["tokens_per_name"] >= 1


def test_summary_is_cached_per_base(tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def fake_probe(base: Any) -> dict[str, Any]:
        calls.append(base)
        return {"pools": {}, "base": str(base), "answers": [{"question": "q"}]}

    monkeypatch.setattr(fam, "probe", fake_probe)
    monkeypatch.setattr(fam, "cache_path", lambda path: tmp_path / "familiarity.json")
    first = fam.familiarity_summary(tiny_base)
    assert "answers" not in first and first["base"] == str(tiny_base)
    assert fam.familiarity_summary(tiny_base) == first
    assert len(calls) == 1
    assert json.loads((tmp_path / "familiarity.json").read_text())["answers"] == [{"question": "q"}]
    fam.familiarity_summary(tiny_base, refresh=True)
    assert len(calls) == 2
    monkeypatch.setattr(fam, "PROBE_VERSION", fam.PROBE_VERSION + 1)  # new questions: a stale cache
    fam.familiarity_summary(tiny_base)
    assert len(calls) == 3
    (tmp_path / "familiarity.json").write_text("{not json")  # damaged: measured again
    fam.familiarity_summary(tiny_base)
    assert len(calls) == 4


def test_cli_prints_a_row_per_pool(
    tiny_base: Path,
    small_pools: dict[str, fam.Pool],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(fam, "cache_path", lambda path: tmp_path / "familiarity.json")
    out = tmp_path / "fam.json"
    assert run_cli(["probe", "familiarity", "--base", "test", "--json", str(out)], monkeypatch) == 0
    printed = capsys.readouterr().out
    for pool in fam.pools():
        assert pool in printed
    written = json.loads(out.read_text())
    assert set(written["pools"]) == set(fam.pools()) and written["answers"]
