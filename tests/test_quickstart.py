from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from loralab.experiments.quickstart import CELLS
from tests.conftest import run_cli

EXAMPLES = "SELECT correct FROM examples WHERE cell_id = ? AND task = 'ac_cot'"


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_here_matches_a_hand_value() -> None:
    # 0 of 40: [0, z^2 / (40 + z^2)] = [0, 0.0876...]; the README's tables print it as [0.0, 8.8]
    assert _wilson(0, 40) == pytest.approx((0.0, 0.08762), abs=1e-5)


def test_quickstart_on_the_test_base_writes_every_cell(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from loralab.experiments.quickstart import quickstart

    rows = quickstart(
        tmp_path, base="test", n_triplets=3, templates=12, max_new_tokens=8, console=Console(width=160)
    )
    assert [(r["method"], r["library"]) for r in rows] == [(m or "base", lib) for m, lib, _ in CELLS]
    # each cell's accuracy and interval, worked out again from its stored questions (3 triplets x 2 test
    # templates) with the Wilson formula written out here
    con = sqlite3.connect(tmp_path / "results.sqlite")
    for r in rows:
        marks = [c for (c,) in con.execute(EXAMPLES, (r["id"],))]
        k, n = sum(marks), len(marks)
        assert (r["n"], r["correct"], r["accuracy"]) == (6, k, k / 6) and n == 6
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(_wilson(k, n), abs=1e-7)  # its z has 6 decimals
    con.close()
    assert (tmp_path / "library").is_dir() and (tmp_path / "results.sqlite").is_file()
    # every cell carries the retention columns: 3 triplets x 2 held-out questions per hop
    for r in rows:
        m = r["metrics"]
        assert (m["retained_ab"].n, m["retained_bc"].n, m["retained_both"].n) == (6, 6, 3)
        assert m["twohop"].n == 6 and m["twohop_given_both"].n <= 6 and m["cot_step1_bridge"].n == 6
    capsys.readouterr()
    assert (
        run_cli(
            ["report", str(tmp_path / "results.sqlite"), "--format", "markdown", "--by-triplet"], monkeypatch
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "both kept: right" in out and "two-hop given both kept" in out and out.count("| arrow |") == 4
