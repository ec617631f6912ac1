"""GSM-Symbolic templates: the safe evaluator, parsing, instantiation, solutions and datasets.

Only the project's own templates and hand-written ones here: the released GSM-Symbolic files may not be
copied into the project (bench/gsm_real_templates.py checks the engine on them where they are).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from loralab.errors import LoralabError
from loralab.gsm.datasets import (
    P2_PER_TEMPLATE,
    SPLITS,
    build_gsm,
    distinct_instances,
    ensure_gsm,
    gsm_files,
    own_templates_dir,
    read_released,
)
from loralab.gsm.expr import EvalError, ExprError, compile_expr, divides, evaluate, is_int
from loralab.gsm.solutions import (
    answer_value,
    code_solution,
    computation_steps,
    families,
    family_functions,
)
from loralab.gsm.templates import (
    LEVELS,
    NoInstance,
    Template,
    default_values,
    format_number,
    instance_from_values,
    instantiate,
    load_templates,
    parse_template,
    render_defaults,
)
from loralab.gsm.vocab import VOCABULARIES, Worded, number_words
from loralab.worlds.jsonl import read_jsonl

OWN = load_templates(own_templates_dir())
ALL_OWN = [t for level in LEVELS for t in OWN[level]]


def template(question: str, solution: str, level: str = "symbolic", family: str = "toy") -> Template:
    data = {"question_annotated": question, "answer_annotated": solution, "id_shuffled": 7, "family": family}
    return parse_template(data, "toy.json", level)


APPLES = template(
    "{name,Ada} has {a,3} apples and buys {b,4} bags with {c,5} apples each. How many apples now?\n\n"
    "#init:\n- name = sample(names)\n- $a = range(2, 10)\n- $b = range(2, 6)\n- $c = range(2, 6)\n\n"
    "#conditions:\n- a != c\n\n#answer: a + b * c",
    "The bags hold {b} * {c} = <<{b}*{c}={b*c}>>{b*c} apples.\n{name} has {a} + {b*c} = {a+b*c} apples.\n"
    "#### {a+b*c}",
)


# ---------------------------------------------------------------------------------------------------------
# The evaluator


def test_evaluator_follows_python_arithmetic() -> None:
    assert evaluate("2 + 3 * 4") == 14
    assert evaluate("7 // 2 + 7 % 2") == 4  # 3 + 1
    assert evaluate("(1 + 2) ** 2 - 10 / 4") == 6.5
    assert evaluate("1 < 2 <= 2 < 3") is True
    assert evaluate("not (1 < 2 and 3 < 2)") is True
    assert evaluate("30 if unit == 'month' else 7", {"unit": "week"}) == 7
    mixed = "round(2 / 3, 2) + abs(-1) + max(3, 8) + min([4, 2]) + sum([1, 2]) + len('abc')"
    assert evaluate(mixed) == 17.67  # 0.67 + 1 + 8 + 2 + 3 + 3
    assert evaluate("Fraction(1, 3) * 3") == 1
    assert evaluate("int(17 * Fraction(2, 5))") == 6  # 34/5 = 6.8
    assert evaluate("[10, 20, 30, 40][1:3]") == [20, 30]
    assert evaluate("list(range(2, 5)) * 2") == [2, 3, 4, 2, 3, 4]


def test_condition_functions() -> None:
    assert divides(12, 4) and not divides(12, 5) and not divides(3, 0)
    assert divides(Fraction(3, 2), Fraction(1, 2))  # 3/2 is three halves
    assert is_int(0.1 * 30)  # 3.0000000000000004
    assert is_int(Fraction(6, 3)) and not is_int(2.5) and not is_int("3")
    assert evaluate("divides(k * y, 12) and is_int(x * 12 / (k * y))", {"k": 2, "y": 6, "x": 10})


def test_worded_values_compute_as_numbers() -> None:
    twice = Worded("twice", 2)
    assert evaluate("n * mult + 1", {"n": 5, "mult": twice}) == 11
    assert evaluate("mult[0] + ' as many'", {"mult": twice}) == "twice as many"
    assert evaluate("mult[1] == 2 and mult > 1 and int(mult) == 2", {"mult": twice})
    third = VOCABULARIES["fraction_alph"][1]
    assert third == Worded("a third", Fraction(1, 3))
    assert evaluate("is_int(9 * f) and 9 * f == 3", {"f": third})


def test_drawing_functions_are_seeded() -> None:
    env = {"names": ["Ada", "Ben", "Cy"], "weekdays": VOCABULARIES["weekdays"]}
    a = [evaluate("sample(names, 2)", env, random.Random(5)) for _ in range(2)]
    assert a[0] == a[1] and len(set(a[0])) == 2
    days = evaluate("sample_sequential(weekdays, 3)", env, random.Random(1))
    first = VOCABULARIES["weekdays"].index(days[0])
    assert days == VOCABULARIES["weekdays"][first : first + 3]
    assert evaluate("numbers_within(2, 4)") == [Worded("two", 2), Worded("three", 3), Worded("four", 4)]
    assert evaluate("frange(1.5, 2.5, 0.25)") == [1.5, 1.75, 2.0, 2.25]
    assert evaluate("np.arange(0.1, 0.4, 0.1)") == [0.1, 0.2, 0.3]  # numpy would give 0.30000000000000004
    assert evaluate("fix_floats([12.5, 0.1 + 0.2])") == [Worded("12.50", 12.5), Worded("0.30", 0.3)]
    assert evaluate("format_frac(Fraction(11, 2))") == "5 1/2"
    assert number_words(42) == "forty-two" and number_words(305) == "three hundred five"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("getattr(x, 'y')", "unknown function 'getattr'"),
        ("open('secrets.txt')", "unknown function 'open'"),
        ("x.__class__", "unsupported syntax (Attribute)"),
        ("[i for i in range(3)]", "unsupported syntax (ListComp)"),
        ("(lambda: 1)()", "unknown function"),
        ("round(x, ndigits=2)", "positional arguments only"),
        ("a is b", "unsupported comparison Is"),
        ("1 +", "cannot parse"),
        ("", "empty expression"),
    ],
)
def test_evaluator_rejects_what_is_not_whitelisted(source: str, message: str) -> None:
    with pytest.raises(ExprError, match="^where: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        compile_expr(source, "where")


def test_evaluator_bounds_sizes() -> None:
    with pytest.raises(EvalError, match="too large"):
        evaluate("7 ** 100000")
    with pytest.raises(EvalError, match="longer than the limit"):
        evaluate("[0] * 10 ** 6")
    with pytest.raises(EvalError, match="longer than the limit"):
        evaluate("list(range(10 ** 9))")


# ---------------------------------------------------------------------------------------------------------
# Templates


def test_hand_template_renders_question_solution_and_answer() -> None:
    inst = instance_from_values(APPLES, {"name": "Zoe", "a": 3, "b": 4, "c": 5})
    assert inst.question == "Zoe has 3 apples and buys 4 bags with 5 apples each. How many apples now?"
    assert inst.solution == "The bags hold 4 * 5 = 20 apples.\nZoe has 3 + 20 = 23 apples.\n#### 23"
    assert inst.answer == 23 and inst.gold == "23"
    assert (
        render_defaults(APPLES) == "Ada has 3 apples and buys 4 bags with 5 apples each. How many apples now?"
    )
    assert default_values(APPLES) == {"name": "Ada", "a": 3, "b": 4, "c": 5}
    assert computation_steps(APPLES) == ["b * c", "a + b * c"]


def test_instantiation_is_seeded_and_meets_the_conditions() -> None:
    first = [instantiate(APPLES, seed) for seed in range(20)]
    again = [instantiate(APPLES, seed) for seed in range(20)]
    assert [i.question for i in first] == [i.question for i in again]
    assert len({i.question for i in first}) > 15
    for inst in first:
        v = inst.values
        assert v["a"] != v["c"] and 2 <= v["a"] < 10 and v["name"] in VOCABULARIES["names"]
        assert inst.answer == v["a"] + v["b"] * v["c"]


def test_worded_values_show_as_words_in_questions_and_numbers_in_solutions() -> None:
    ages = next(t for t in OWN["p1"] if t.family == "family_ages")
    inst = instance_from_values(
        ages,
        {"name": "Sara", "aunt": "Rosa", "sib": "Omar", "a": 6, "d": 3, "mult": Worded("three times", 3)},
    )
    assert "Rosa is three times as old as Omar" in inst.question
    assert "Rosa is 3 * 9 = 27 years old." in inst.solution and inst.gold == "27"
    cookies = next(t for t in OWN["p2"] if t.family == "cookie_trays")
    inst = instance_from_values(cookies, {"name": "Maya", "n": 3, "k": 6, "e": 2, "p": Worded("four", 4)})
    assert "among four friends" in inst.question and "16 / 4 = 4 cookies" in inst.solution
    assert inst.answer == 4  # (3 * 6 - 2) // 4


def test_fractions_stay_exact() -> None:
    pages = next(t for t in OWN["p2"] if t.family == "reading_pages")
    half = Worded("half", Fraction(1, 2))
    inst = instance_from_values(pages, {"name": "Nora", "total": 60, "r": 5, "d": 4, "x": 8, "frac": half})
    assert "reads half of the pages" in inst.question
    assert "1/2 * 32 = 16 pages, so 32 - 16 = 16 pages are left." in inst.solution
    assert inst.answer == 16 and inst.gold == "16"
    assert format_number(16.0) == "16" and format_number(37.440000000000005) == "37.44"
    assert format_number(Fraction(5, 2)) == "5/2" and format_number(Fraction(5, 2), "decimal") == "2.5"


BAD = [
    ("{n,3} apples and {m,4", "n + m", "question_annotated line 1: unbalanced '{'"),
    ("{n,3} apples} and {m,4}", "n + m", "question_annotated line 1: unbalanced '}'"),
    ("{n,3} and {m,{4}}", "n + m", "'{' inside a placeholder"),
    ("{n,3} and {m,4}", "n + zz", "unknown name 'zz'"),
]


@pytest.mark.parametrize(("question", "answer", "message"), BAD)
def test_malformed_templates_are_one_line_errors(question: str, answer: str, message: str) -> None:
    text = f"{question}\n\n#init:\n- $n = range(1, 5)\n- $m = range(1, 5)\n\n#answer: {answer}"
    with pytest.raises(LoralabError, match=message) as err:
        template(text, "{n} + {m} = {n+m}\n#### {n+m}")
    assert "\n" not in str(err.value) and str(err.value).startswith("toy.json")


def test_more_malformed_templates() -> None:
    init = "#init:\n- $n = range(1, 5)\n"
    cases = {
        "{n,2} eggs\n\n#init:\n- $n = randint(1, 5)\n\n#answer: n": "#init line 4: unknown function 'randint'",
        f"{{n,2}} eggs\n\n{init}\n#conditions:\n- frob(n)\n\n#answer: n": "#conditions line 7: unknown function",
        f"{{n,2}} eggs\n\n{init}": "no #answer section",
        "{n,2} eggs": "no #init/#conditions/#answer sections",
        "{n,2} eggs\n\n#init:\n$n = range(1, 5)\n\n#answer: n": "toy.json #init line 4: expected '- ...'",
    }
    for question, message in cases.items():
        with pytest.raises(LoralabError, match=message):
            template(question, "{n}\n#### {n}")
    with pytest.raises(LoralabError, match=r"no final '#### \{answer\}' line"):
        template(f"{{n,2}} eggs\n\n{init}\n#answer: n", "{n} eggs")


def test_unsatisfiable_and_inconsistent_templates_say_why() -> None:
    never = template(
        "{n,2} eggs\n\n#init:\n- $n = range(1, 5)\n\n#conditions:\n- n > 100\n\n#answer: n", "{n}\n#### {n}"
    )
    with pytest.raises(LoralabError) as err:
        instantiate(never, seed=3, max_tries=50)
    assert str(err.value) == (
        "toy.json: no instance in 50 tries (seed 3): no draw met the conditions; "
        "most often (50 times) condition 'n > 100' is false"
    )
    wrong = template("{n,2} eggs\n\n#init:\n- $n = range(1, 5)\n\n#answer: n * 3", "{n}\n#### {n + 1}")
    with pytest.raises(LoralabError, match="50 draws met the conditions but the solution's final answer"):
        instantiate(wrong, max_tries=50)
    trusted = instantiate(wrong, seed=0, check_answer=False)  # the solution's #### line wins
    assert trusted.answer == trusted.values["n"] + 1
    numeric = template("{n,2} eggs\n\n#init:\n- $n = sample(names)\n\n#answer: 1", "{n}\n#### 1")
    with pytest.raises(LoralabError, match=r"\$n is numeric but drew"):
        instantiate(numeric)


# ---------------------------------------------------------------------------------------------------------
# The project's own templates


def test_own_templates_cover_every_family_at_every_level() -> None:
    names = {level: [t.family for t in OWN[level]] for level in LEVELS}
    assert names["symbolic"] == names["p1"] == names["p2"]
    assert len(set(names["symbolic"])) == 10


@pytest.mark.parametrize("tpl", ALL_OWN, ids=[t.id for t in ALL_OWN])
def test_every_own_template_instantiates_and_its_answers_check(tpl: Template) -> None:
    # the stored default question is the template's defaults, and those defaults make a valid instance
    default = instance_from_values(tpl, default_values(tpl))
    assert default.question == tpl.data["question"] == render_defaults(tpl)
    assert default.solution == tpl.data["answer"]
    for seed in range(25):
        inst = instantiate(tpl, seed, max_tries=2000)  # instantiate checks the #### line against #answer
        env = {**VOCABULARIES, **inst.values}
        assert float(inst.answer) == float(tpl.answer(env))
        assert inst.solution.endswith(f"#### {inst.gold}")
        assert "{" not in inst.question + inst.solution and "<<" not in inst.solution
        assert is_int(inst.answer) and 0 <= inst.answer < 400  # small whole numbers for a small model


def test_own_defaults_worked_out_by_hand() -> None:
    golds = {t.family: instance_from_values(t, default_values(t)).gold for t in OWN["p2"]}
    assert golds == {
        "fruit_picking": "15",  # 4 + 3 - 2 + 2 * 5
        "cookie_trays": "4",  # (3 * 6 - 2) // 4
        "shopping_change": "35",  # 50 - (3 * 4 + 3)
        "family_ages": "32",  # (6 + 3) * 3 + 5
        "reading_pages": "16",  # 60 - 5 * 4 - 8 = 32, minus half of it
        "garden_rows": "39",  # (3 * 5 - 2) * 3
        "music_practice": "140",  # 20 + 15 + 2 * 20 = 75, plus 75 - 10
        "bus_riders": "20",  # (12 + 5 - 7) * 2
        "piggy_bank": "20",  # 3 * 6 + 10 - 2 * 4
        "farm_legs": "30",  # 4 * 4 + 2 * 6 + 2 * 3 - 4 * 1
    }


# ---------------------------------------------------------------------------------------------------------
# Solutions


def run_code(target: str) -> str:
    """Execute the ```python block of a code target (our own generated code) and return what it prints."""
    source = target.split("```python\n", 1)[1].split("\n```", 1)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, {})
    return out.getvalue().strip()


def test_code_functions_reuse_the_easier_level() -> None:
    fns = family_functions([t for t in ALL_OWN if t.family == "fruit_picking"])
    assert [f.source for f in fns] == [
        "def fruit_picking_symbolic(a, b):\n    return a + b\n",
        "def fruit_picking_p1(a, b, c):\n    symbolic_answer = fruit_picking_symbolic(a, b)\n"
        "    return symbolic_answer - c\n",
        "def fruit_picking_p2(a, b, c, d, e):\n    p1_answer = fruit_picking_p1(a, b, c)\n"
        "    return p1_answer + d * e\n",
    ]
    p2 = next(t for t in OWN["p2"] if t.family == "fruit_picking")
    inst = instance_from_values(
        p2, {"name": "Ada", "friend": "Leo", "fruit": "plum", "a": 4, "b": 3, "c": 2} | {"d": 2, "e": 5}
    )
    target = code_solution(inst, fns)
    assert target.endswith(
        "print(fruit_picking_p2(a=4, b=3, c=2, d=2, e=5))\n```\n```output\n15\n```\n#### 15"
    )
    assert run_code(target) == "15"


@pytest.mark.parametrize("graph", ["level", "whole"])
def test_code_solutions_run_and_return_the_answer(graph: str) -> None:
    code = families(OWN)
    for tpl in ALL_OWN:
        for seed in range(5):
            inst = instantiate(tpl, seed)
            target = code_solution(inst, code[tpl.family], graph)
            printed = run_code(target)
            assert printed == str(answer_value(inst))
            assert float(Fraction(printed)) == float(inst.answer)
            shown = [lv for lv in LEVELS if f"def {tpl.family}_{lv}(" in target]
            assert shown == (
                list(LEVELS) if graph == "whole" else list(LEVELS[: LEVELS.index(tpl.level) + 1])
            )


def test_code_with_fractions_imports_fraction() -> None:
    pages = next(t for t in OWN["p2"] if t.family == "reading_pages")
    third = Worded("a third", Fraction(1, 3))
    inst = instance_from_values(pages, {"name": "Nora", "total": 50, "r": 3, "d": 4, "x": 2, "frac": third})
    target = code_solution(inst, families(OWN)["reading_pages"])
    assert target.startswith("```python\nfrom fractions import Fraction\n")
    assert "frac=Fraction(1, 3)" in target and run_code(target) == "24"  # 50 - 12 - 2 = 36, minus a third


# ---------------------------------------------------------------------------------------------------------
# Datasets


def test_dataset_splits_follow_the_papers_protocol() -> None:
    files, skipped = gsm_files(OWN, seed=0)
    assert skipped == []
    n = len(OWN["symbolic"])
    assert {name: len(rows) for name, rows in files.items()} == {
        "symbolic.train.jsonl": 40 * n,
        "symbolic.dev.jsonl": 5 * n,
        "symbolic.test.jsonl": 5 * n,
        "p1.train.jsonl": 40 * n,
        "p1.dev.jsonl": 5 * n,
        "p1.test.jsonl": 5 * n,
        "p2.test.jsonl": 2 * n,
    }
    assert sum(SPLITS.values()) == 50 and P2_PER_TEMPLATE == 2
    for level in ("symbolic", "p1"):
        by_split = {s: {(r["family"], r["prompt"]) for r in files[f"{level}.{s}.jsonl"]} for s in SPLITS}
        assert not by_split["train"] & by_split["test"] and not by_split["dev"] & by_split["test"]
        assert len(by_split["train"]) == 40 * n  # distinct questions within a template
    row = files["p2.test.jsonl"][0]
    assert row["id"] == "p2-0000-test-0" and row["task"] == "p2" and row["format"] == "gsm"
    assert row["answer"].endswith(f"#### {row['gold']}") and row["solution"] == "cot"
    assert row["family"] == "fruit_picking" and row["steps"] == 4  # a + b - c + d * e: +, -, *, +
    assert gsm_files(OWN, seed=0).files == files and gsm_files(OWN, seed=1).files != files


def test_build_gsm_writes_rows_the_trainer_reads(tmp_path: Path) -> None:
    out = build_gsm(tmp_path / "gsm", solution="code")
    meta = json.loads((out / "meta.json").read_text())
    assert (
        meta["generator"] == "gsm-1" and meta["solution"] == "code" and meta["counts"]["p2.test.jsonl"] == 20
    )
    rows = read_jsonl(out / "p1.train.jsonl", required=("prompt", "answer", "gold"))
    assert len(rows) == 400 and all(run_code(r["answer"]) for r in rows[:40])
    with pytest.raises(LoralabError, match="already exists"):
        build_gsm(tmp_path / "gsm")


def test_too_few_distinct_questions_is_an_error() -> None:
    tiny = template("{n,2} eggs\n\n#init:\n- $n = range(1, 3)\n\n#answer: n", "{n}\n#### {n}")
    assert len(distinct_instances(tiny, 2)) == 2
    with pytest.raises(LoralabError, match="only 2 distinct questions in 60 draws \\(3 wanted\\)"):
        distinct_instances(tiny, 3)


def test_seeds_without_an_instance_are_passed_over() -> None:
    rare = template(
        "{n,2} eggs\n\n#init:\n- $n = range(1, 41)\n\n#conditions:\n- n > 10\n\n#answer: n", "{n}\n#### {n}"
    )
    failing = []
    for k in range(8):
        with contextlib.suppress(NoInstance):
            instantiate(rare, f"0:symbolic/0007:{k}", max_tries=1)
            continue
        failing.append(k)
    assert failing  # one draw per seed: some seeds find nothing ...
    drawn = distinct_instances(rare, 5, max_tries=1)  # ... and are passed over
    assert len(drawn) == 5 and all(i.values["n"] > 10 for i in drawn)


def test_inconsistent_templates_fail_or_are_skipped(tmp_path: Path) -> None:
    for level in LEVELS:
        shutil.copytree(own_templates_dir() / level, tmp_path / level)
    bad = json.loads((tmp_path / "p2" / "0000.json").read_text())
    bad["answer_annotated"] = bad["answer_annotated"].replace("#### {a+b-c+d*e}", "#### {a+b-c+d*e+1}")
    (tmp_path / "p2" / "0000.json").write_text(json.dumps(bad))
    templates = load_templates(tmp_path)
    message = r"p2/0000\.json: no instance in \d+ tries .*: 1000 draws met the conditions but .* differs"
    with pytest.raises(NoInstance, match=message) as err:
        gsm_files(templates)
    assert err.value.mismatches > 0
    files, skipped = gsm_files(templates, skip_inconsistent=True)
    assert skipped == ["p2/0000"] and len(files["p2.test.jsonl"]) == 18


def test_ensure_gsm_reuses_a_matching_dataset(tmp_path: Path) -> None:
    first = ensure_gsm(tmp_path / "d", seed=3)
    created = json.loads((first / "meta.json").read_text())["created"]
    (first / "marker").write_text("kept")
    assert ensure_gsm(tmp_path / "d", seed=3) == first and (first / "marker").is_file()
    ensure_gsm(tmp_path / "d", seed=4)  # other options: rebuilt
    meta = json.loads((first / "meta.json").read_text())
    assert meta["seed"] == 4 and not (first / "marker").exists() and created


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_read_released_format(tmp_path: Path) -> None:
    good = {
        "id": 3,
        "instance": 1,
        "question": "Q?",
        "answer": "2 + 30.5 = 32.5\n#### 32.5",
        "original_id": 9,
    }
    rows = read_released(write_lines(tmp_path / "GSM_p2.jsonl", [good, {**good, "answer": "x\n#### 1,200"}]))
    assert rows[0] == {
        "id": "p2-0003-1",
        "task": "p2",
        "family": "gsm0003",
        "template": 3,
        "instance": 1,
        "prompt": "Q?",
        "answer": "2 + 30.5 = 32.5\n#### 32.5",
        "gold": "32.5",
        "format": "gsm",
        "solution": "cot",
        "original_id": 9,
    }
    assert rows[1]["gold"] == "1200"
    no_answer = {k: v for k, v in good.items() if k != "answer"}
    bad = write_lines(tmp_path / "GSM_p1.jsonl", [good, no_answer])
    with pytest.raises(LoralabError, match=r"GSM_p1.jsonl:2: no 'answer'$"):
        read_released(bad)
    with pytest.raises(LoralabError, match=r"x.jsonl:1: the answer does not end with '#### N'"):
        read_released(write_lines(tmp_path / "x.jsonl", [{**good, "answer": "no number"}]), "symbolic")
    with pytest.raises(LoralabError, match="cannot tell the level"):
        read_released(tmp_path / "x.jsonl")


def test_a_template_folder_that_yields_nothing_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every template skipped as inconsistent: one error, no folder of meta.json alone."""
    import loralab.gsm.datasets as datasets
    from loralab.errors import LoralabError

    def all_skipped(*_: object, **__: object) -> tuple[dict[str, list[object]], list[str]]:
        return {"symbolic.train.jsonl": [], "p2.test.jsonl": []}, ["symbolic/0000", "p2/0000"]

    monkeypatch.setattr(datasets, "gsm_files", all_skipped)
    with pytest.raises(LoralabError, match=r"no question could be drawn \(2 template\(s\) skipped"):
        datasets.build_gsm(tmp_path / "out", skip_inconsistent=True)
    assert not (tmp_path / "out").exists()
