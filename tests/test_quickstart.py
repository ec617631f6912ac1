from __future__ import annotations

from pathlib import Path

from loralab.experiments.quickstart import CELLS


def test_quickstart_on_the_test_base_writes_every_cell(tiny_base: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from loralab.experiments.quickstart import quickstart

    rows = quickstart(
        tmp_path, base="test", n_triplets=3, templates=12, max_new_tokens=8, console=Console(width=160)
    )
    assert [(r["method"], r["library"]) for r in rows] == [(m or "base", lib) for m, lib, _ in CELLS]
    assert all(r["n"] == 3 * 2 and 0.0 <= r["accuracy"] <= 1.0 for r in rows)  # 3 triplets x 2 test templates
    assert (tmp_path / "library").is_dir() and (tmp_path / "results.sqlite").is_file()
