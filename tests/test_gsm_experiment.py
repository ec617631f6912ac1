"""The GSM experiment: the test preset end to end through the CLI, resuming, scoring outputs without a number,
and hostile model code in a TIR round (scripted fake generator)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from loralab.errors import LoralabError
from loralab.gsm.evaluate import DecodeConfig, evaluate_gsm
from loralab.gsm.experiment import (
    describe_plan,
    load_experiment,
    plan_cells,
    preset_path,
)
from tests.conftest import run_cli

# test.yaml: table12 = base x cot x {symbolic, p1, p2} (3); table2 = {base, uniform, arrow} x {cot, 8-shot}
# on p2, less base-cot-p2 already in table12 (5); table3 = base-tir + {uniform, arrow} x mlp (3)
TEST_CELLS = 11
# experts: {symbolic, p1} x {(cot, attention), (code-whole, mlp)}
TEST_EXPERTS = 4
# own templates: 10 families; symbolic and p1 test splits hold 5 per family, p2 (test preset) 1 per family
TEST_N = {"symbolic": 50, "p1": 50, "p2": 10}


def _cells(db: Path) -> list[tuple[str, str, str, int, str]]:
    con = sqlite3.connect(db)
    try:
        return list(con.execute("SELECT method, prompting, library, n, config FROM cells ORDER BY id"))
    finally:
        con.close()


def test_test_preset_runs_end_to_end_and_resumes(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    assert run_cli(["gsm", "run", "--preset", "test", "--workdir", str(work)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert f"{TEST_EXPERTS} experts trained, {TEST_CELLS} cells evaluated" in out

    cells = _cells(work / "results.sqlite")
    assert len(cells) == TEST_CELLS
    by_label = {(m, p, lib.split(" ")[-1] if lib != "-" else "-", n) for m, p, lib, n, _ in cells}
    assert ("base", "gsm8k-8shot", "-", TEST_N["p2"]) in by_label
    assert ("arrow", "tir", "mlp)", TEST_N["p2"]) in by_label
    for _, _, _, n, config in cells:
        analysis = json.loads(config)["analysis"]
        assert len(analysis) == n  # every example analysed
        assert {a["status"] for a in analysis.values()} <= {"correct", "wrong", "no answer"}
        errors = json.loads(config)["errors"]
        assert sum(sum(v.values()) for v in errors.values()) == n

    tables = (work / "runs" / "gsm-test" / "tables.md").read_text()
    assert "## table12:" in tables and "## table2:" in tables and "## table3:" in tables
    assert "### table2: error analysis" in tables
    table3 = tables.split("## table3:")[1]
    rows = [line for line in table3.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0:3] for r in rows] == [
        ["| base", "-", "-"],
        ["| uniform", "code-whole", "mlp"],
        ["| arrow", "code-whole", "mlp"],
    ]
    table12 = tables.split("## table12:")[1].split("## ")[0]
    assert "| cot on symbolic | cot on p1 | cot on p2 | n |" in table12
    assert re.search(r"\| base \| - \| - \| [\d.]+ \[.*\] \| .* \| 10/50 \|", table12)

    experts = sorted((work / "experts").iterdir())
    assert len(experts) == TEST_EXPERTS
    stamps = [(e / "adapter_model.safetensors").stat().st_mtime_ns for e in experts]

    # a rerun trains and evaluates nothing and prints the same tables
    assert run_cli(["gsm", "run", "--preset", "test", "--workdir", str(work)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "0 experts trained, 0 cells evaluated" in out
    assert len(_cells(work / "results.sqlite")) == TEST_CELLS
    assert [(e / "adapter_model.safetensors").stat().st_mtime_ns for e in experts] == stamps
    assert (work / "runs" / "gsm-test" / "tables.md").read_text() == tables


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


def test_presets_validate_and_plan() -> None:
    paper = load_experiment(preset_path("paper"))
    jobs = plan_cells(paper)
    # table12: 3; table2: uniform, arrow (base cot p2 is table12's); table13: the three 8-shot cells;
    # table3: base tir + {uniform, arrow} x {attention, mlp}; table14: all shared with table2
    assert len(jobs) == 3 + 2 + 3 + 5 + 0
    assert len({e for j in jobs for e in j.experts}) == 6
    plan = describe_plan(paper, base="/models/qwen", templates="/data/templates")
    assert "6 experts" in plan and "13 cells" in plan
    with pytest.raises(LoralabError, match="pass --base"):
        describe_plan(paper)
    # by hand from the YAML files: test = table12 (3 levels) + table2 (base 8-shot; uniform, arrow x 2
    # prompts) + table3 (base, uniform, arrow with TIR); default adds the single experts on every level
    # (table12: 2 x 3; table3-experts: 2 x 3). Both train Symbolic and P1 experts in two formats.
    for name, cells, lora in (("test", 3 + 5 + 3, (4, 8)), ("default", 9 + 5 + 3 + 6, (16, 32))):
        spec = load_experiment(preset_path(name))
        jobs = plan_cells(spec)
        assert len(jobs) == cells and len({e for j in jobs for e in j.experts}) == 4, name
        assert (spec.lora.r, spec.lora.alpha) == lora, name


def test_a_config_mistake_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nbase: test\ntables:\n  - name: t\n    title: t\n    methods: [base, averaging]\n"
    )
    with pytest.raises(LoralabError, match=r"bad.yaml:4: tables.0: method 'averaging'"):
        load_experiment(bad)


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


def test_code_epochs_change_only_the_code_experts() -> None:
    from loralab.gsm.experiment import LoraSpec

    lora = LoraSpec(epochs=4, code_epochs=12)
    assert [lora.for_format(f)["epochs"] for f in ("cot", "code", "code-whole")] == [4, 12, 12]
    # a CoT expert's settings (and so its hash) are those of a config without code_epochs: it is not retrained
    assert lora.for_format("cot") == LoraSpec(epochs=4).model_dump(exclude={"code_epochs"})
    assert "code_epochs" not in lora.for_format("code")
