"""Output a person reads (issue 20, item 6): tables fit a terminal without zero-width or cut columns and are
whole in files; the HTML familiarity section is a table; a report at scale `test` carries a caution."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from loralab.report.build import RunReport
from loralab.report.layouts import ReportTable
from loralab.terminal import FILE_WIDTH, fit_table, min_width, print_table
from tests.conftest import run_cli

CELLS = ("setup-2 R1 + F1 + F2 + F12 CoT (B_F)", "0.025 [0.004, 0.129]", "arrow", "Qwen2.5-3B-Instruct paper")


def _table() -> Table:
    table = Table(title="t", caption="c")
    for header in ("library", "accuracy", "method", "paper"):
        table.add_column(header, no_wrap=header != "library")
    table.add_row(*CELLS)
    return table


def _printed(width: int, drop: tuple[str, ...]) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None)
    print_table(console, _table(), drop)
    return buf.getvalue()


def test_a_wide_terminal_shows_everything() -> None:
    out = _printed(200, ("paper", "method"))
    assert all(cell in out for cell in CELLS) and "hidden" not in out and "…" not in out


def test_a_narrow_terminal_drops_columns_by_priority_and_cuts_nothing() -> None:
    # minimum widths (cell + 2 padding): library 9 (its longest word), accuracy 22, method 8, paper 27; 5 rules
    console = Console(file=io.StringIO(), width=70)
    fitted, width = fit_table(console, _table(), ("paper", "method"))
    assert min_width(console, _table()) == 9 + 22 + 8 + 27 + 5 == 71
    assert [str(c.header) for c in fitted.columns] == ["library", "accuracy", "method"]  # 43 fits in 70
    fitted, width = fit_table(Console(file=io.StringIO(), width=40), _table(), ("paper", "method"))
    assert [str(c.header) for c in fitted.columns] == ["library", "accuracy"] and width == 40
    out = _printed(40, ("paper", "method"))
    assert "0.025 [0.004, 0.129]" in out and "…" not in out  # the no-wrap interval whole, brackets kept
    assert "hidden to fit the terminal: paper, method" in " ".join(out.split())
    for word in CELLS[0].split():  # the wrapped column keeps every word
        assert word in out


def test_too_narrow_for_the_essential_columns_prints_them_whole() -> None:
    out = _printed(20, ("paper", "method"))
    assert "0.025 [0.004, 0.129]" in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) > 20  # wider than the window: the terminal wraps it


def test_a_file_gets_every_column_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loralab.cli import console

    assert console.width == FILE_WIDTH  # pytest's stdout is not a terminal
    capsys.readouterr()
    assert run_cli(["ls", "methods"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "T_e[sign=g]" in out and "rows[w_e s_e A_e]" in out
    assert "a list option takes a,b or [a,b] or one value" in " ".join(out.split())
    assert "Ostapenko et al. 2024, Towards Modular LLMs by Building and Reusing a Library of LoRAs" in out


def test_group_commands_have_help_examples(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for group in ("data", "base", "library", "probe", "gsm", "sandbox"):
        capsys.readouterr()
        assert run_cli([group, "--help"], monkeypatch) == 0
        assert f"Example: loralab {group} " in capsys.readouterr().out, group


def _report(scale: str, familiarity: dict[str, object], key: str = "scale") -> RunReport:
    meta = {key: scale, "familiarity": familiarity}
    controls = ReportTable("Positive controls", "", ["Control"], [], [], 1)
    return RunReport("r", "e", Path("f"), Path("w"), meta, 1, 1, [], {}, [], "m", controls, [])


def test_test_scale_reports_carry_a_caution() -> None:
    from loralab.report.html import render_html

    caution = "this scale measures nothing"
    test_run, real_run = _report("test", {}), _report("default", {})
    assert caution in test_run.markdown() and caution not in real_run.markdown()
    html = render_html(test_run)
    assert '<p class="caution">Caution: this run used scale `test`' in html
    assert caution not in render_html(real_run)
    # a run folder written before scales had their own name says `preset` in its meta.json
    old = _report("test", {}, key="preset")
    assert caution in old.markdown() and "scale: test" in old.markdown()
    assert '"scale": "test"' in old.json() and "--scale test" in old.resume_command()


def test_html_familiarity_is_a_table() -> None:
    from loralab.report.html import render_html

    summary = {
        "base": "test",
        "pools": {
            "real_people": {
                "names": 3,
                "tokens_per_name": 2.5,
                "logprob_per_token": -3.364,
                "public_facts": {"n": 4, "correct": 1, "accuracy": 0.25},
                "corpus_facts": None,
            }
        },
    }
    html = render_html(_report("default", {"test": summary}))
    section = html.split("Familiarity of the base model(s)</h2>", 1)[1]
    assert section.lstrip().startswith("<table>") and "<pre>" not in section
    row = "<tr><td>test</td><td>real_people</td>"
    assert row in section
    for cell in ("3", "2.50", "-3.36", "0.25 (1/4)", "-"):
        assert f'<td class="num">{cell}</td>' in section
