from __future__ import annotations

from pathlib import Path

import pytest

from loralab.experiments.quickstart import CELLS
from tests.conftest import run_cli


def test_quickstart_on_the_test_base_writes_every_cell(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    from loralab.experiments.quickstart import quickstart

    rows = quickstart(
        tmp_path, base="test", n_triplets=3, templates=12, max_new_tokens=8, console=Console(width=160)
    )
    assert [(r["method"], r["library"]) for r in rows] == [(m or "base", lib) for m, lib, _ in CELLS]
    assert all(r["n"] == 3 * 2 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)  # 3 triplets x 2 test templates
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
