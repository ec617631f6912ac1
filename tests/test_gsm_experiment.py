"""The GSM experiment is a spec (experiments/gsm/*.yaml) that `loralab run` executes: the test spec end to end
with its report tables, resuming after SIGKILL, the Ray executor, the three specs' plans counted by hand,
one-line mistakes; scoring outputs without a number, and hostile model code in a TIR round (scripted fake
generator).

experiments/gsm/test.yaml: the `test` base after 3 arithmetic steps; own templates (10 families), 1
training question per template and level (10 rows: two optimiser steps at batch 8 per expert), 5 test
questions per template of symbolic and P1 (50 each), 1 P2 question per template (10). Cells: the base on 5
evaluations, Uniform and Arrow over the CoT experts on 2, over the code experts on 1: 11. Each cell's file
is one generation batch (batch 64), so its `eval-batch` checkpoint count is one per cell without TIR.
"""

from __future__ import annotations

import contextlib
import io
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from loralab.errors import LoralabError
from loralab.experiments.spec import expand, load_spec
from loralab.gsm.evaluate import DecodeConfig, evaluate_gsm
from tests.conftest import adapter_hashes, cell_count, loralab_process, run_cli, stored_results

GSM = Path(__file__).resolve().parents[1] / "experiments" / "gsm"
TEST_SPEC = GSM / "test.yaml"
RUN = "gsm-test"
TEST_CELLS = 11
TEST_EXPERTS = 4  # {symbolic, p1} x {(cot, attention), (code-whole, mlp)}
TEST_N = {"symbolic": 50, "p1": 50, "p2": 10}


@pytest.fixture(scope="module")
def reference(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the test spec (it builds the arithmetic base step into the test cache)."""
    work = tmp_path_factory.mktemp("gsm")
    done = loralab_process(TEST_SPEC, work)
    assert done.returncode == 0, done.stderr
    assert "cells 0/11 done" in done.stdout
    return work


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def test_the_test_spec_stores_every_cell_with_its_analysis_in_typed_columns(reference: Path) -> None:
    db = reference / "results.sqlite"
    assert cell_count(reference) == (TEST_CELLS, TEST_CELLS)
    assert len(adapter_hashes(reference)) == TEST_EXPERTS
    rows = {
        name: sum(1 for _ in path.open())
        for path in (reference / "datasets").glob("gsm-own-cot-*/*.jsonl")
        for name in [path.name]
    }
    assert rows == {
        "symbolic.train.jsonl": 10,
        "p1.train.jsonl": 10,
        "symbolic.test.jsonl": 50,
        "p1.test.jsonl": 50,
        "p2.test.jsonl": 10,
    }
    cells = _query(
        db,
        "SELECT c.method, c.prompting, c.dataset, c.n, c.correct, count(e.cell_id), "
        "sum(e.status = 'correct'), sum(e.correct), sum(e.status IS NULL), sum(e.solution_type IS NULL) "
        "FROM cells c JOIN examples e ON e.cell_id = c.id GROUP BY c.id ORDER BY c.id",
    )
    assert [(m, p) for m, p, *_ in cells] == [
        ("base", "cot"),
        ("base", "cot"),
        ("base", "cot"),
        ("base", "gsm8k-8shot"),
        ("base", "tir"),
        ("uniform", "cot"),
        ("uniform", "gsm8k-8shot"),
        ("arrow", "cot"),
        ("arrow", "gsm8k-8shot"),
        ("uniform", "tir"),
        ("arrow", "tir"),
    ]
    for method, prompt, dataset, n, correct, examples, ok, marked, no_status, no_type in cells:
        level = str(dataset).rsplit("/", 1)[1].split(".")[0]
        assert n == examples == TEST_N[level], (method, prompt, dataset)
        # the cell's count, the examples' correct flags and their analysed status agree; none is missing
        assert correct == ok == marked and no_status == no_type == 0
    # TIR cells ran (at most one) code block per answer; the others none
    runs = _query(
        db,
        "SELECT c.prompting, max(e.code_runs) FROM cells c JOIN examples e ON e.cell_id = c.id "
        "GROUP BY c.prompting",
    )
    assert {p: r <= (1 if p == "tir" else 0) for p, r in runs} == {
        "cot": True,
        "gsm8k-8shot": True,
        "tir": True,
    }


def _table(markdown: str, title: str) -> list[list[str]]:
    """The rows (header first) of the Markdown table under the heading `### TITLE...`."""
    part = markdown.split(f"### {title}", 1)[1].split("\n### ", 1)[0]
    lines = [line for line in part.splitlines() if line.startswith("| ") and "---|" not in line]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]


def test_report_and_status_read_the_run_folder(
    reference: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = reference / "runs" / RUN
    assert run_cli(["status", str(folder)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "datasets: 2/2 done" in out and "experts: 4/4 done" in out and "cells: 11/11 done" in out
    assert run_cli(["report", str(folder)], monkeypatch) == 0
    report = (folder / "report" / "report.md").read_text()
    table12 = _table(report, "table12:")
    assert table12[0] == ["Method", "cot on symbolic", "cot on p1", "cot on p2"]
    assert [r[0] for r in table12[1:]] == ["Base model"]
    assert [c.rsplit("n=", 1)[1] for c in table12[1][1:]] == ["50", "50", "10"]
    table2 = _table(report, "table2:")
    assert table2[0] == ["Method", "Library", "Targets", "cot on p2", "gsm8k-8shot on p2"]
    assert [r[:3] for r in table2[1:]] == [
        ["Base model", "-", "-"],
        ["Uniform", "cot-attention", "Attention"],
        ["Arrow", "cot-attention", "Attention"],
    ]
    table3 = _table(report, "table3:")
    assert [r[:3] for r in table3[1:]] == [
        ["Base model", "-", "-"],
        ["Uniform", "code-whole-mlp", "MLP"],
        ["Arrow", "code-whole-mlp", "MLP"],
    ]
    assert "### table3: error analysis" not in report  # only table2 asks for one
    errors = _table(report, "table2: error analysis")
    no_answer = dict(
        _query(
            reference / "results.sqlite",
            "SELECT c.method || ' ' || c.prompting, sum(e.status = 'no answer') FROM cells c "
            "JOIN examples e ON e.cell_id = c.id WHERE c.dataset LIKE '%/p2.test' AND c.prompting != 'tir' "
            "GROUP BY c.id",
        )
    )
    methods = {"Base model": "base", "Uniform": "uniform", "Arrow": "arrow"}
    assert len(errors) == 1 + 6
    for row in errors[1:]:
        prompt = row[2].split(" on ")[0]
        assert row[3] == "10" and int(row[-1]) == no_answer[f"{methods[row[0]]} {prompt}"]
        shares = [int(v.rstrip("%")) for v in row[5:-1]]
        assert sum(shares[:3]) == 100 and sum(shares[3:]) == 100  # each example has one type of each kind


def test_a_rerun_does_nothing(reference: Path) -> None:
    before = stored_results(reference)
    stamps = {p: p.stat().st_mtime_ns for p in (reference / "experts").glob("*/meta.json")}
    again = loralab_process(TEST_SPEC, reference)
    assert again.returncode == 0, again.stderr
    assert "datasets 2/2, experts 4/4, cells 11/11 done" in again.stdout
    assert stored_results(reference) == before
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_sigkill_in_training_then_rerun_equals_an_uninterrupted_run(reference: Path, tmp_path: Path) -> None:
    # steps 1-2 are the first expert's (10 rows at batch 8), step 3 the second's first: killed there
    killed = loralab_process(TEST_SPEC, tmp_path, kill_at="train-step:3")
    assert killed.returncode == -9
    assert len(adapter_hashes(tmp_path)) == 1 and not (tmp_path / "results.sqlite").exists()
    resumed = loralab_process(TEST_SPEC, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "experts 1/4" in resumed.stdout
    assert adapter_hashes(tmp_path) == adapter_hashes(reference)
    assert stored_results(tmp_path) == stored_results(reference)


def test_sigkill_in_evaluation_then_rerun_stores_each_cell_once(reference: Path, tmp_path: Path) -> None:
    # the base's first three cells are one generation batch each: killed in the third
    killed = loralab_process(TEST_SPEC, tmp_path, kill_at="eval-batch:3")
    assert killed.returncode == -9
    assert cell_count(tmp_path) == (2, 2)
    resumed = loralab_process(TEST_SPEC, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "cells 2/11 done" in resumed.stdout
    assert cell_count(tmp_path) == (TEST_CELLS, TEST_CELLS)
    assert stored_results(tmp_path) == stored_results(reference)


def test_the_ray_executor_stores_what_the_local_one_does(reference: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'loralab[ray]')")
    done = loralab_process(TEST_SPEC, tmp_path, "--executor", "ray")
    assert done.returncode == 0, done.stderr
    assert adapter_hashes(tmp_path) == adapter_hashes(reference)
    assert stored_results(tmp_path) == stored_results(reference)


def test_the_specs_plan_by_hand() -> None:
    # test: 5 base cells + uniform, arrow x {cot, 8-shot} + uniform, arrow x tir; default adds each CoT
    # expert alone on 3 levels (6) and each code expert alone on 3 levels with TIR (6), and its base and
    # combinations are test's (11): 23; paper: test's 11 plus Uniform and Arrow over the code experts on
    # attention (2): 13
    for name, cells, experts in (("test", 11, 4), ("default", 23, 4), ("paper", 13, 6)):
        spec = load_spec(GSM / f"{name}.yaml")
        assert len(expand(spec)) == cells and len(spec.experts) == experts, name
    default = load_spec(GSM / "default.yaml")
    # ExpertConfig's max_len default is 512: the GSM specs set theirs (768; the paper's 1024)
    assert {e.lora.max_len for e in default.experts.values()} == {768}
    assert {k: e.lora.epochs for k, e in default.experts.items()} == {
        "symbolic-cot": 4,
        "p1-cot": 4,
        "symbolic-code": 12,
        "p1-code": 12,
    }
    assert {e.lora.max_len for e in load_spec(GSM / "paper.yaml").experts.values()} == {1024}
    # a scale resizes the base step's source and the epochs like any spec's
    scaled = load_spec(GSM / "default.yaml", "test")
    step = scaled.bases[0]
    assert not isinstance(step, str) and (step.source, step.steps) == ("test", 800)
    assert {e.lora.epochs for e in scaled.experts.values()} == {1}


BAD = """name: x
bases:
  - {name: b, kind: arithmetic, source: /no/such/model, steps: 1}
datasets:
  d: {kind: gsm}
  far: {kind: gsm, source: no/such/templates}
experts:
  e: {train: [{dataset: d, task: p2}]}
libraries: {one: [e]}
methods: [{name: uniform}]
evaluations:
  - {dataset: d, prompting: direct}
tables:
  - {name: t, title: t, libraries: [two]}
"""


def test_spec_mistakes_name_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    assert run_cli(["validate", str(bad)], monkeypatch) == 2
    err = capsys.readouterr().err
    far = (Path.cwd() / "no/such/templates").resolve()
    assert f"{bad}:6: datasets.far.source: {far}: not a folder" in err
    assert f"{bad}:8: experts.e.train.0.task: dataset 'd' has no p2.train.jsonl" in err
    assert f"{bad}:12: evaluations.0.prompting: gsm data: choose one of cot, gsm8k-8shot, tir" in err
    assert f"{bad}:3: bases.0.source: '/no/such/model': only a built-in base" in err
    assert f"{bad}:14: tables.0.libraries.0: unknown library 'two'" in err
    with pytest.raises(LoralabError, match=r"bad.yaml:6: .* \(and 4 more"):
        load_spec(bad)


def _examples() -> list[dict[str, object]]:
    return [
        {
            "id": "a",
            "prompt": "Ada has 3 apples and buys 4. How many?",
            "gold": "7",
            "steps": 1,
            "task": "p2",
        },
        {"id": "b", "prompt": "Leo has 9 pears and eats 2. How many?", "gold": "7", "steps": 1, "task": "p2"},
        {
            "id": "c",
            "prompt": "Mia has 5 cards and gets 5. How many?",
            "gold": "10",
            "steps": 1,
            "task": "p2",
        },
    ]


def test_an_output_without_a_number_is_scored_no_answer() -> None:
    replies = {
        "Ada": "I am not sure how to solve this.",
        "Leo": "She has 9 - 2 = 7 pears.\n#### 7",
        "Mia": "\\boxed{ten}",
    }

    def fake(prompts: Sequence[str]) -> list[str]:
        return [next(v for k, v in replies.items() if k in p) for p in prompts]

    result = evaluate_gsm(fake, _examples(), "cot")
    assert [d["status"] for d in result.details] == ["no answer", "correct", "no answer"]
    assert [r["extracted"] for r in result.rows] == ["", "7", "ten"]
    assert [d["solution_type"] for d in result.details] == ["none", "natural language", "none"]
    assert [d["error_type"] for d in result.details] == ["semantic", "none", "semantic"]
    assert (result.n, result.correct, result.count("no answer")) == (3, 1, 2)


def test_hostile_tir_code_is_contained_and_the_run_goes_on() -> None:
    code = {
        "Ada": "while True:\n    pass",  # endless loop: the sandbox's time limits stop it
        "Leo": "import os\nwhile True:\n    os.fork()",  # fork bomb: refused, the program fails
        "Mia": "print(5 + 5)",
    }
    batches: list[int] = []

    def fake(prompts: Sequence[str]) -> list[str]:
        batches.append(len(prompts))
        out = []
        for p in prompts:
            if "```output" in p:  # answer with what the code printed (first line)
                shown = p.rsplit("```output\n", 1)[1].split("\n", 1)[0]
                out.append(f"The program says {shown}. \\boxed{{{shown}}}")
            else:
                name = next(k for k in code if k in p)
                out.append(
                    f"Let me compute.\n```python\n{code[name]}\n```\n```output\n42\n```\n\\boxed{{42}}"
                )
        return out

    decode = DecodeConfig(max_rounds=1, timeout_s=2.0, cpu_s=1)
    result = evaluate_gsm(fake, _examples(), "tir", decode=decode)
    # all three questions went through one batched round, then one batched continuation
    assert batches == [3, 3]
    loop, bomb, fine = result.details
    assert loop["limits"] and loop["limits"][0] in ("timeout", "cpu")
    assert bomb["limits"] == ["blocked"]
    assert fine["limits"] == [] and fine["status"] == "correct"
    # the model's own "```output 42" was cut: the sandbox's output replaced it
    assert "42" not in result.rows[2]["output"]
    assert [d["status"] for d in result.details] == ["no answer", "no answer", "correct"]
    assert [d["code_runs"] for d in result.details] == [1, 1, 1]
    assert [d["solution_type"] for d in result.details] == ["code", "code", "code"]


def test_every_arithmetic_statement_of_the_base_training_is_true() -> None:
    """The arithmetic the built-in base is trained further on: every "a op b = c" (prices with $ too) holds,
    every code answer prints the stated final answer, and word problems come as often as asked."""
    from loralab.gsm.arithmetic import ArithmeticSpec, arithmetic_documents

    spec = ArithmeticSpec(steps=1, documents=400, seed=5, word_problems=0.4, max_number=100)
    docs = arithmetic_documents(spec)
    assert len(docs) == 400 and all(d.endswith("<|endoftext|>") for d in docs)
    statement = re.compile(r"(?<![\d/])\$?(\d+) ([-+*/]) \$?(\d+) = \$?(\d+)")
    checked = 0
    for doc in docs:
        for d, whole, part in re.findall(r"1/(\d) \* (\d+) = (\d+)", doc):  # fractions of a number
            assert int(whole) == int(d) * int(part)
        for a, op, b, c in statement.findall(doc):
            x, y, z = int(a), int(b), int(c)
            assert (x + y, x - y, x * y, x / y if y else None)["+-*/".index(op)] == z, (a, op, b, c)
            assert 0 <= z <= 12 * 400  # small numbers only
            checked += 1
    assert checked > 1000
    problems = [d for d in docs if "<|im_start|>user" in d and "What is" not in d]
    assert 0.3 < len(problems) / len(docs) < 0.5  # ~40% word problems
    coded = [d for d in problems if "```python" in d]
    assert 0.3 < len(coded) / len(problems) < 0.7  # about half of them answered in code
    for doc in coded:
        code = doc.split("```python\n")[1].split("```")[0]
        shown = doc.split("```output\n")[1].split("\n")[0]
        final = doc.split("#### ")[1].split("<|im_end|>")[0]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, {})  # the project's own generated code
        assert out.getvalue().splitlines() == [shown] == [final]


def test_gsm_eval_stores_one_cell_with_typed_analysis(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.gsm.datasets import build_experiment_data

    spec = {"format": "cot", "source": "own", "seed": 0, "train_per_template": 1, "p2_per_template": 1}
    data = build_experiment_data(tmp_path / "data", spec) / "p2.test.jsonl"
    db = tmp_path / "r.sqlite"
    args = ["gsm", "eval", "--data", str(data), "--base", "test", "--max-new-tokens", "8", "--limit", "3"]
    assert run_cli([*args, "--db", str(db)], monkeypatch) == 0
    assert "/3 = " in capsys.readouterr().out
    cells = _query(db, "SELECT method, prompting, n, correct, key FROM cells")
    assert len(cells) == 1 and cells[0][:3] == ("base", "cot", 3) and cells[0][4] is None
    statuses = [s for (s,) in _query(db, "SELECT status FROM examples")]
    assert len(statuses) == 3 and set(statuses) <= {"correct", "wrong", "no answer"}
    assert cells[0][3] == statuses.count("correct")
