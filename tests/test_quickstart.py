"""The quick start is a spec (src/loralab/experiments/quickstart.yaml) that `loralab run` executes:
`loralab quickstart --preset test` runs it and writes its report, a rerun adds no row, and a run killed with
SIGKILL resumes to the same results as an uninterrupted one.

At the test preset: 4 RR triplets, 8 templates (4 train, 2 dev, 2 test per triplet), so each cell asks
4 x 2 = 8 held-out two-hop questions; A-B and B-C train on 16 rows (batch 16, 1 epoch: one optimiser step
each), the oracle on 48 (three steps)."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
from pathlib import Path

import pytest

from loralab.experiments.quickstart import SPEC
from tests.conftest import loralab_process, run_cli, stored_results

EXAMPLES = "SELECT correct FROM examples WHERE cell_id = ? AND task = 'ac_cot'"
RUN = "quickstart.test"
CELLS = [
    ("base", "-"),
    ("oracle", "A-B"),
    ("oracle", "B-C"),
    ("oracle", "A-C-oracle"),
    ("uniform", "2-combination"),
    ("arrow", "2-combination"),
    ("uniform", "3-combination"),
    ("arrow", "3-combination"),
]


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_here_matches_a_hand_value() -> None:
    # 0 of 40: [0, z^2 / (40 + z^2)] = [0, 0.0876...]; the README's tables print it as [0.0, 8.8]
    assert _wilson(0, 40) == pytest.approx((0.0, 0.08762), abs=1e-5)


def _loralab(workdir: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    return loralab_process(SPEC, workdir, "--preset", "test", kill_at=kill_at)


@pytest.fixture(scope="module")
def quick(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`loralab quickstart --preset test`, uninterrupted; returns its workdir."""
    work = tmp_path_factory.mktemp("quick")
    with pytest.MonkeyPatch.context() as mp:
        args = ["quickstart", "--preset", "test", "--workdir", str(work), "--no-probe"]
        assert run_cli(args, mp) == 0
    return work


def test_quickstart_runs_its_spec_and_reports_every_cell(quick: Path) -> None:
    doc = json.loads((quick / "runs" / RUN / "report" / "report.json").read_text())
    assert [(c["method"], c["library"]) for c in doc["cells"]] == CELLS
    assert (doc["cells_done"], doc["cells_total"]) == (10, 10)  # 8 cells, A-B and B-C alone on their hops
    con = sqlite3.connect(quick / "results.sqlite")
    ids = dict(con.execute("SELECT key, id FROM cells"))
    plan = json.loads((quick / "runs" / RUN / "plan.json").read_text())
    keys = {(c["method"], c["library"]): c["key"] for c in plan["cells"]}
    for c in doc["cells"]:
        # each cell's numbers, worked out again from its stored questions with the Wilson formula above
        marks = [m for (m,) in con.execute(EXAMPLES, (ids[keys[(c["method"], c["library"])]],))]
        k = sum(marks)
        assert (c["n"], c["correct"], len(marks)) == (8, k, 8) and c["accuracy"] == k / 8
        assert (c["ci_low"], c["ci_high"]) == pytest.approx(_wilson(k, 8), abs=1e-7)
        # retention: 4 triplets x 2 held-out questions per hop
        assert (c["retained_ab_n"], c["retained_bc_n"], c["retained_both_n"]) == (8, 8, 4)
    con.close()
    experts = plan["experts"]
    assert sorted(e["name"] for e in experts) == ["A-B", "A-C-oracle", "B-C"]
    assert {(e["config"]["targets"], e["config"]["epochs"]) for e in experts} == {("both", 1)}  # test scale


def test_a_quickstart_rerun_adds_no_row(
    quick: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stored_results(quick)
    capsys.readouterr()
    assert (
        run_cli(["quickstart", "--preset", "test", "--workdir", str(quick), "--no-probe"], monkeypatch) == 0
    )
    assert "experts 3/3, cells 10/10 done" in capsys.readouterr().out
    assert stored_results(quick) == before and len({r[0] for r in before}) == 10


def test_the_quickstart_spec_resumes_after_sigkill(quick: Path, tmp_path: Path) -> None:
    # the second optimiser step is B-C's only one (experts train in spec order): killed before it is saved
    killed = _loralab(tmp_path, kill_at="train-step:2")
    assert killed.returncode == -9
    assert len(list((tmp_path / "experts").glob("*/adapter_model.safetensors"))) == 1
    resumed = _loralab(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "experts 1/3" in resumed.stdout
    assert stored_results(tmp_path) == stored_results(quick)
