"""Bridges, setups, the graph suite, data cards and `loralab data validate` (issue 4, items 3-6)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from loralab.errors import LoralabError
from loralab.worlds.card import read_card
from loralab.worlds.exposure import corpus, experiment_templates_in_corpus, fake_names_in_corpus
from loralab.worlds.familiar import build_world
from loralab.worlds.graph import (
    ATOMIC,
    COMPOSED,
    HELD_OUT,
    TRAINING,
    build_graph,
    disjoint_graph,
    graph_experts,
    shared_graph,
)
from loralab.worlds.graph_templates import GRAPH_RELATIONS
from loralab.worlds.pools import REAL_CITIES
from loralab.worlds.setups import B_F, B_R, SETUPS, build_bridge, build_setup, mixture_notation
from loralab.worlds.twohop import build_twohop, make_triplets
from loralab.worlds.validate import validate_dataset

from .conftest import run_cli


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _notations(setup: str) -> dict[str, list[str]]:
    return {e: [p.notation for p in parts] for e, parts in SETUPS[setup].experts.items()}


def _same_bytes(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.name != "meta.json")  # meta.json holds the time
    assert names == sorted(p.name for p in b.iterdir() if p.name != "meta.json")
    assert {"card.json", "README.md"} <= set(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---------------------------------------------------------------------------
# The registry: Table 1 / Table 9, the text's Setup 1, Section 4.1.1
# ---------------------------------------------------------------------------


def test_setups_are_the_papers_rows() -> None:
    bf = ["F1", "F2", "F12 CoT"]
    table = {  # Table 1 / 9 as read (setup 4: B_F with LoRA 1; setup 5: with LoRA 2), plus the text's Setup 1
        "setup-0": (["R1"], ["R2"], "R12 CoT"),
        "setup-1": (["F1", "R1", "R2", "R12 CoT"], ["F2", "R1", "R2", "R12 CoT"], "F12 CoT"),
        "setup-2": (["R1", *bf], ["R2", *bf], "R12 CoT"),
        "setup-3": (["R1", "F1", "F2", "F12"], ["R2", "F1", "F2", "F12"], "R12 CoT"),
        "setup-4": (["R1", *bf], ["R2"], "R12 CoT"),
        "setup-5": (["R1"], ["R2", *bf], "R12 CoT"),
        "setup-6": (["R1", "F12 CoT"], ["R2", "F12 CoT"], "R12 CoT"),
        "setup-7": (["R1", "F1", "F12 CoT"], ["R2", "F2", "F12 CoT"], "R12 CoT"),
        "setup-8": (["R1", "F1", "F4", "F14 CoT"], ["R2", "F5", "F2", "F52 CoT"], "R12 CoT"),
    }
    for name, (lora1, lora2, evaluation) in table.items():
        assert _notations(name) == {"lora1": lora1, "lora2": lora2}, name
        assert SETUPS[name].evaluation == evaluation
        assert SETUPS[name].libraries == {"2-combination": ("lora1", "lora2")}
    assert mixture_notation(SETUPS["setup-2"].lora1) == "R1 + F1 + F2 + F12 CoT (B_F)"
    assert mixture_notation(SETUPS["setup-1"].lora2) == "F2 + R1 + R2 + R12 CoT (B_R)"
    assert all(p.bridge for p in B_F + B_R) and [p.variant for p in B_R] == ["RR"] * 3
    # bridge parts come from bridge datasets, hops from the evaluated one
    assert [p.bridge for p in SETUPS["setup-2"].lora1] == [False, True, True, True]
    assert [p.bridge for p in SETUPS["setup-1"].lora1] == [False, True, True, True]
    assert "LoRA 1 in setup 4" in SETUPS["setup-4"].note and SETUPS["setup-4"].note == SETUPS["setup-5"].note
    for v in ("FF", "HH", "RR"):
        s = SETUPS[f"familiarity-{v}"]
        x = v[0]
        assert _notations(s.name) == {
            "lora1": [f"{x}1"],
            "lora2": [f"{x}2"],
            "lora3": [f"{x}12 CoT"],
            "lora4": [f"{x}1", f"{x}2"],
        }
        assert s.libraries == {
            "2-combination": ("lora1", "lora2"),
            "3-combination": ("lora1", "lora2", "lora3"),
        }
    assert len(SETUPS) == 12


def test_setup_8_at_full_size(tmp_path: Path) -> None:
    out = build_setup(tmp_path / "s8", "setup-8", 100, seed=0)
    card = read_card(out)
    files = {name: f["rows"] for name, f in card["files"].items()}
    assert files == {
        "lora1.train.jsonl": 4 * 4600,
        "lora2.train.jsonl": 4 * 4600,
        "ac_cot.test.jsonl": 200,
        "ac_cot.dev.jsonl": 200,
        "ac.test.jsonl": 200,
        "ac.dev.jsonl": 200,
        # the evaluated R dataset's held-out one-hop questions (100 triplets x 2 templates), for retention
        "ab.test.jsonl": 200,
        "ab.dev.jsonl": 200,
        "bc.test.jsonl": 200,
        "bc.dev.jsonl": 200,
    }
    assert {r["source"] for r in _rows(out / "ab.test.jsonl")} == {"R1"}
    sources = {e: {r["source"] for r in _rows(out / f"{e}.train.jsonl")} for e in ("lora1", "lora2")}
    assert sources == {"lora1": {"R1", "F1", "F4", "F14 CoT"}, "lora2": {"R2", "F5", "F2", "F52 CoT"}}
    relations = {r["relation"] for e in ("lora1", "lora2") for r in _rows(out / f"{e}.train.jsonl")}
    assert "spouse_born_in" not in relations  # no F12 (nor R12) in training
    assert {"study_in", "spouse_study_in", "child_of", "child_born_in"} <= relations
    assert card["experts"]["lora2"]["mixture"] == "R2 + F5 + F2 + F52 CoT"
    assert card["evaluation"] == {
        "dataset": "RR-spouse_born_in",
        "files": ["ac_cot.test.jsonl"],
        "notation": "R12 CoT",
    }
    assert card["splits"]["train"]["rows"] == 36800 and card["splits"]["test"]["rows"] == 4 * 200
    # the evaluated dataset is `loralab data twohop --variant RR --triplets 100 --seed 0`, row for row
    twohop = build_twohop(tmp_path / "rr", "RR", 100, seed=0)
    strip = ("dataset", "source")
    test = [{k: v for k, v in r.items() if k not in strip} for r in _rows(out / "ac_cot.test.jsonl")]
    assert [{**r, "id": r["id"].split("/")[1]} for r in test] == _rows(twohop / "ac_cot.test.jsonl")
    # the two bridges and the evaluated triplets share no person and no fake city
    people = {
        name: set(d["entities"]["A"]["names"]) | set(d["entities"]["B"]["names"])
        for name, d in card["datasets"].items()
    }
    assert sorted(people) == ["RR-spouse_born_in", "bridge-FF-child_born_in", "bridge-FF-spouse_study_in"]
    assert all(len(p) == 200 for p in people.values())
    assert not people["bridge-FF-child_born_in"] & people["bridge-FF-spouse_study_in"]
    cities = [set(d["entities"]["C"]["names"]) for n, d in card["datasets"].items() if "FF" in n]
    assert not cities[0] & cities[1]
    assert validate_dataset(out).ok


def test_every_setup_builds_valid_and_byte_identical(tmp_path: Path) -> None:
    n = 4
    for name, setup in SETUPS.items():
        out = build_setup(tmp_path / name, name, n, bridge_triplets=3, seed=1)
        card = read_card(out)
        for expert, parts in setup.experts.items():
            rows = _rows(out / f"{expert}.train.jsonl")
            per_part = [46 * (3 if p.bridge else n) for p in parts]
            assert len(rows) == sum(per_part), (name, expert)
            assert [r["source"] for r in rows] == [
                p.notation for p, k in zip(parts, per_part, strict=True) for _ in range(k)
            ]
        assert card["files"]["ac_cot.test.jsonl"]["rows"] == 2 * n
        result = validate_dataset(out, "test")
        assert result.ok, result.problems
    again = build_setup(tmp_path / "again", "setup-8", n, bridge_triplets=3, seed=1)
    _same_bytes(tmp_path / "setup-8", again)
    other = build_setup(tmp_path / "other", "setup-8", n, bridge_triplets=3, seed=2)
    assert (other / "lora1.train.jsonl").read_bytes() != (again / "lora1.train.jsonl").read_bytes()


def test_rows_are_flat_and_load_as_tables(tmp_path: Path) -> None:
    out = build_setup(tmp_path / "s2", "setup-2", 3, bridge_triplets=2)
    for path in sorted(out.glob("*.jsonl")):
        frame = pd.read_json(path, lines=True)
        rows = _rows(path)
        assert len(frame) == len(rows) and list(frame.columns) == list(rows[0])
        assert all(list(r) == list(rows[0]) for r in rows)
        assert all(not isinstance(v, (dict, list)) for r in rows for v in r.values())


# ---------------------------------------------------------------------------
# Bridges
# ---------------------------------------------------------------------------


def test_bridges_avoid_the_excluded_and_rr_runs_out_of_people(tmp_path: Path) -> None:
    rr = make_triplets("RR", 100, seed=0)
    used = {x for a, b, _ in rr for x in (a, b)}
    out = build_bridge(tmp_path / "br", "RR", 20, exclude=used, disjoint_from=["rr"])
    rows = _rows(out / "bridge.train.jsonl")
    assert len(rows) == 3 * 20 * 46
    assert [r["source"] for r in rows[:: 20 * 46]] == ["R1", "R2", "R12 CoT"]
    assert not {x for r in rows for x in (r["a"], r["b"])} & used
    assert read_card(out)["excluded"] == {"from": ["rr"], "names": sorted(used)}
    assert validate_dataset(out, "test").ok
    _same_bytes(out, build_bridge(tmp_path / "again", "RR", 20, exclude=used, disjoint_from=["rr"]))
    with pytest.raises(ValueError, match=r"2 x 21 familiar people; .* 40 of them are not excluded"):
        build_bridge(tmp_path / "too-many", "RR", 21, exclude=used)
    # without exclusions a bridge draws what the two-hop suite draws (the default chain, same seed)
    assert make_triplets("FF", 5, seed=0, exclude=()) == make_triplets("FF", 5, seed=0)
    ff = make_triplets("FF", 5, seed=0)
    shifted = make_triplets("FF", 5, seed=0, exclude={ff[0][0], ff[0][2]})
    assert shifted[1:] != ff[1:] and not {ff[0][0], ff[0][2]} & {x for t in shifted for x in t}


def test_cli_data_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    rr = tmp_path / "rr"
    assert (
        run_cli(["data", "twohop", "--variant", "RR", "--triplets", "100", "--out", str(rr)], monkeypatch)
        == 0
    )
    assert run_cli(["data", "validate", str(rr), "--base", "test"], monkeypatch) == 0
    assert "valid" in capsys.readouterr().out
    bridge = ["data", "bridge", "--variant", "RR", "--disjoint-from", str(rr), "--out", str(tmp_path / "b")]
    assert run_cli([*bridge, "--triplets", "100"], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "--triplets 100" in err and "familiar people" in err and len(err.strip().splitlines()) == 1
    assert run_cli([*bridge, "--triplets", "20"], monkeypatch) == 0
    setup = [
        "data",
        "setup",
        "setup-6",
        "--triplets",
        "3",
        "--bridge-triplets",
        "2",
        "--out",
        str(tmp_path / "s6"),
    ]
    assert run_cli(setup, monkeypatch) == 0
    assert run_cli(["data", "validate", str(tmp_path / "s6"), "--base", "test"], monkeypatch) == 0
    graph = ["data", "graph", "--variant", "disjoint", "--paths", "2", "--out", str(tmp_path / "g")]
    assert run_cli(graph, monkeypatch) == 0
    for args, flag in (
        (["data", "setup", "setup-9"], "setup setup-9"),
        (["data", "setup", "setup-1", "--triplets", "0"], "--triplets 0"),
        (["data", "graph", "--variant", "ring"], "--variant ring"),
        (["data", "graph", "--u3", "5"], "--u3 5"),
        (["data", "bridge", "--relations", "sibling_born_in"], "--relations sibling_born_in"),
        (["data", "validate", str(tmp_path / "nothing")], "nothing"),
        (
            ["data", "validate", str(rr), "--base", "huge"],
            "--base huge: checks a base preset's corpus; choose default, test",
        ),
    ):
        assert run_cli(args, monkeypatch) == 2, args
        err = capsys.readouterr().err
        assert flag in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------
# The graph suite
# ---------------------------------------------------------------------------


def test_graph_relations_and_templates() -> None:
    assert ATOMIC == {
        "Rel1": "spouse_of",
        "Rel2": "born_in",
        "Rel3": "child_of",
        "Rel4": "study_in",
        "Rel5": "roommate_of",
    }
    assert HELD_OUT == ("Rel1", "Rel2") and COMPOSED[HELD_OUT] == "spouse_born_in"
    assert TRAINING == (
        ("Rel1", "Rel4"),
        ("Rel3", "Rel4"),
        ("Rel3", "Rel2"),
        ("Rel5", "Rel2"),
        ("Rel5", "Rel4"),
    )
    assert {k: len(r.templates) for k, r in GRAPH_RELATIONS.items()} == {
        "roommate_of": 50,
        "child_study_in": 50,
        "roommate_born_in": 50,
        "roommate_study_in": 50,
    }
    experts = graph_experts()
    assert len(experts) == 10
    assert experts["Rel3->Rel4"]["files"] == ["rel3_rel4_cot.train.jsonl"]
    assert experts["Rel5"]["files"] == ["rel5.train.jsonl"]


def test_disjoint_graph_is_separate_paths() -> None:
    g = disjoint_graph(3, seed=0)
    assert len(g.u1) == len(g.u2) == len(g.u3) == 18
    assert not (set(g.u1) & set(g.u2)) and not (set(g.u1) | set(g.u2)) & set(g.u3)
    first = [(s, o) for rel in ("Rel1", "Rel3", "Rel5") for s, o in g.edges[rel].items()]
    second = [(s, o) for rel in ("Rel2", "Rel4") for s, o in g.edges[rel].items()]
    assert len(first) == len(second) == 18
    for triples in (first, second):  # every entity in exactly one triple of its group
        names = [x for pair in triples for x in pair]
        assert len(names) == len(set(names))
    assert {c: len(s) for c, s in g.subjects.items()} == {c: 3 for c in (HELD_OUT, *TRAINING)}
    assert {len(g.edges[r]) for r in ATOMIC} == {6, 9} and len(g.edges["Rel2"]) == 9


def test_shared_graph_pools_and_distinct_answers() -> None:
    g = shared_graph(30, 20, 12, seed=0)
    assert (len(g.u1), len(g.u2), len(g.u3)) == (30, 20, 12)
    for x in g.u1:
        mids = [g.edges[r][x] for r in ("Rel1", "Rel3", "Rel5")]
        assert len(set(mids)) == 3
        assert len({g.edges[b][m] for m in mids for b in ("Rel2", "Rel4")}) == 6
    assert all(len(g.edges[r]) == 20 for r in ("Rel2", "Rel4"))
    assert len(set(g.edges["Rel1"].values())) < 30  # u2's are shared by several u1's
    with pytest.raises(ValueError, match=r"\|U3\| >= 6"):
        shared_graph(3, 3, 5)


def test_graph_files_counts_splits_and_validation(tmp_path: Path) -> None:
    out = build_graph(tmp_path / "shared", "shared", seed=0)  # the defaults: 100 entities per set
    card = read_card(out)
    rows = {name: f["rows"] for name, f in card["files"].items()}
    for rel in ("rel1", "rel2", "rel3", "rel4", "rel5"):
        assert (rows[f"{rel}.train.jsonl"], rows[f"{rel}.test.jsonl"]) == (4600, 200)
    for a, b in TRAINING:
        for task in (f"{a}_{b}".lower(), f"{a}_{b}_cot".lower()):
            assert rows[f"{task}.train.jsonl"] == 4600 and rows[f"{task}.test.jsonl"] == 200
    assert "rel1_rel2.train.jsonl" not in rows and "rel1_rel2_cot.train.jsonl" not in rows
    assert rows["rel1_rel2_cot.test.jsonl"] == 200 and len(rows) == 5 * 3 + 5 * 6 + 4
    assert (
        card["evaluation"]["files"] == ["rel1_rel2_cot.test.jsonl"]
        and len(card["libraries"]["10-LoRA"]) == 10
    )
    test = _rows(out / "rel1_rel2_cot.test.jsonl")
    row = test[0]
    assert row["prompt"].startswith("Answer the following question step-by-step:\n")
    assert row["answer"].endswith(f"Therefore, the answer is {row['gold']}.") and row["label"] == "Rel1->Rel2"
    train = {(r["unit"], r["template"]) for r in _rows(out / "rel1.train.jsonl")}
    assert not train & {(r["unit"], r["template"]) for r in test}
    result = validate_dataset(out, "test")
    assert result.ok, result.problems
    small = build_graph(tmp_path / "disjoint", "disjoint", paths=3, seed=0)
    assert read_card(small)["files"]["rel2.train.jsonl"]["rows"] == 9 * 46
    assert validate_dataset(small, "test").ok
    again = build_graph(tmp_path / "again", "disjoint", paths=3, seed=0)
    _same_bytes(small, again)


# ---------------------------------------------------------------------------
# Cards and validation
# ---------------------------------------------------------------------------


def test_twohop_card_counts_templates_and_entities(twohop_dir: Path) -> None:
    card = read_card(twohop_dir)
    assert card["dataset"] == "twohop" and card["generator"] == "twohop-3" and card["seed"] == 0
    assert card["command"] == (
        "loralab data twohop --variant RR --triplets 6 --seed 0 --templates 12 --dev-templates 1"
    )
    assert card["splits"]["train"]["rows"] == 4 * 6 * 9 and card["splits"]["test"]["rows"] == 4 * 6 * 2
    assert card["files"]["ab.test.jsonl"]["templates"]["spouse_of"] == sorted(
        {t for s in card["template_split"] for t in s["test"]}
    )
    assert len(card["entities"]["A"]["names"]) == 6 and "real people" in card["entities"]["A"]["pool"]
    readme = (twohop_dir / "README.md").read_text()
    assert card["command"] in readme and "| `ab.train.jsonl` | train | 54 |" in readme


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def _rewrite(path: Path, change: Any) -> None:
    rows = _rows(path)
    change(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_validate_finds_each_kind_of_problem(tmp_path: Path) -> None:
    good = build_setup(tmp_path / "good", "setup-2", 3, bridge_triplets=2)
    assert validate_dataset(good, "test").ok

    def first_problem(name: str, change: Any, file: str) -> str:
        bad = _copy(good, tmp_path / name)
        _rewrite(bad / file, change)
        problems = validate_dataset(bad, "test").problems
        assert problems, name
        assert problems[0].startswith(str(bad)), problems[0]
        return problems[0]

    test = _rows(good / "ac_cot.test.jsonl")

    def leak_template(rows: list[dict[str, Any]]) -> None:  # train triplet 0 on one of its test templates
        r = next(r for r in rows if r["triplet"] == 0 and r["dataset"] == "RR-spouse_born_in")
        r["template"] = test[0]["template"]

    assert "trains on its held-out template" in first_problem("leak", leak_template, "lora1.train.jsonl")

    def leak_person(rows: list[dict[str, Any]]) -> None:  # a bridge row about an evaluated person
        r = next(r for r in rows if r["dataset"].startswith("bridge"))
        r["prompt"] = r["prompt"].replace(r["a"], test[0]["a"])
        r["answer"] = r["answer"].replace(r["a"], test[0]["a"])
        r["a"] = test[0]["a"]

    assert "people of RR-spouse_born_in and bridge" in first_problem(
        "person", leak_person, "lora2.train.jsonl"
    )

    def drop_gold(rows: list[dict[str, Any]]) -> None:
        rows[3]["answer"] = "I do not know."

    assert "does not name its gold" in first_problem("gold", drop_gold, "lora1.train.jsonl")

    seen = build_world(40, 40, 10).background_people[0]  # a name the test base has read, as a fake "city"
    assert seen.lower() in corpus("test").words

    def seen_name(rows: list[dict[str, Any]]) -> None:
        r = next(r for r in rows if r["dataset"].startswith("bridge"))
        r["c"] = seen

    assert "occurs in the test base's corpus" in first_problem("seen", seen_name, "lora1.train.jsonl")

    def nested(rows: list[dict[str, Any]]) -> None:
        rows[0]["a"] = {"name": rows[0]["a"]}

    assert "not flat" in first_problem("nested", nested, "ac.dev.jsonl")
    bad = _copy(good, tmp_path / "missing")
    (bad / "ac.dev.jsonl").unlink()
    assert validate_dataset(bad, "test").problems == [
        f"{bad / 'ac.dev.jsonl'}: listed in card.json but missing"
    ]
    with pytest.raises(LoralabError, match=r"no card\.json"):
        validate_dataset(tmp_path)


def test_the_base_corpus_holds_no_experiment_template_or_name() -> None:
    assert experiment_templates_in_corpus() == []
    info = corpus("default")
    assert (info.real_people, info.background_people, info.towns) == (240, 3000, 400)
    assert {"spouse", "born_in", "friend", "food"} <= set(info.relations) and "study_in" not in info.relations
    assert "einstein" in info.words and "married" in info.words
    ff = make_triplets("FF", 100, seed=0)
    fake = {x for t in ff for x in t}
    assert fake_names_in_corpus(fake) == []
    assert (
        fake_names_in_corpus({"Paris", "Albert Einstein", next(iter(fake))}) == []
    )  # real names may be there
    assert fake_names_in_corpus({"Einstein"}) == ["Einstein"]  # not a real entity, yet a corpus word
    graph = disjoint_graph(100, seed=0)
    assert fake_names_in_corpus(set(graph.u1) | set(graph.u2) | set(graph.u3)) == []
    assert not {c.lower() for c in REAL_CITIES} & {x.lower() for x in graph.u3}
    # no experiment phrasing, not even a study_in or roommate one, is in the corpus text
    text = " ".join(f" {w} " for w in sorted(info.words))
    assert " roommate " not in text and " studies " not in text
    assert re.search(" spouse ", text)  # the corpus does talk about spouses, in its own phrasings


def test_a_cards_command_rebuilds_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    built = [
        build_setup(tmp_path / "s7", "setup-7", 3, bridge_triplets=2, seed=5),
        build_graph(tmp_path / "g", "shared", u1=5, u2=6, u3=12, templates=10, dev_templates=1, seed=5),
        build_twohop(tmp_path / "t", "FF", 4, relations="spouse_study_in", templates=8, seed=5),
    ]
    for i, folder in enumerate(built):
        args = shlex.split(read_card(folder)["command"])
        assert args[0] == "loralab"
        again = tmp_path / f"again-{i}"
        assert run_cli([*args[1:], "--out", str(again)], monkeypatch) == 0, args
        _same_bytes(folder, again)
