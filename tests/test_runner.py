"""The experiment runner: a grid end to end through the CLI, resume after SIGKILL, and the Ray executor.

`tests/specs/tiny-grid.yaml` at the test scale is one dataset (4 RR triplets, 8 templates: 4 train, 2 dev,
2 test per triplet), two experts (A->B, B->C; 16 rows, batch 16, 1 epoch: one optimiser step each) and two
cells (uniform, ties). A cell evaluates 8 two-hop CoT questions plus 8 + 8 one-hop retention questions, each
file one generation batch: three `eval-batch` checkpoints per cell. The runner adds the positive controls'
two cells, each expert alone on its 8 held-out one-hop questions (one batch each), after the spec's cells.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import adapter_hashes, cell_count, loralab_process, run_cli, stored_results

SPEC = Path(__file__).parent / "specs" / "tiny-grid.yaml"
RUN = "tiny-grid.test"


def _loralab(workdir: Path, *extra: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    return loralab_process(SPEC, workdir, "--scale", "test", *extra, kill_at=kill_at)


@pytest.fixture(scope="module")
def reference(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the grid."""
    workdir = tmp_path_factory.mktemp("reference")
    done = _loralab(workdir)
    assert done.returncode == 0, done.stderr
    return workdir


def test_the_grid_runs_through_the_cli_and_a_rerun_does_nothing(
    reference: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cell_count(reference) == (4, 4)
    assert len(adapter_hashes(reference)) == 2 and len(list((reference / "datasets").iterdir())) == 1
    rows = stored_results(reference)
    # per cell: 4 triplets x 2 test templates, for ac_cot, ab and bc; per control: 8 one-hop questions
    assert len(rows) == 2 * 3 * 8 + 2 * 8
    methods = sorted({r[1] for r in rows})
    assert methods == ["oracle", "ties", "uniform"]
    stamp = {p: p.stat().st_mtime_ns for p in (reference / "experts").glob("*/meta.json")}
    args = ["run", str(SPEC), "--scale", "test", "--workdir", str(reference), "--no-probe"]
    assert run_cli(args, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "datasets 1/1, experts 2/2, cells 4/4 done" in out
    assert cell_count(reference) == (4, 4)
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp  # nothing retrained
    assert run_cli(["status", str(reference / "runs" / RUN)], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "experts: 2/2 done" in out and "cells: 4/4 done" in out


def test_sigkill_in_training_then_rerun_equals_an_uninterrupted_run(reference: Path, tmp_path: Path) -> None:
    # the second optimiser step is the second expert's only one: killed after it, before the adapter is saved
    killed = _loralab(tmp_path, kill_at="train-step:2")
    assert killed.returncode == -9
    assert len(adapter_hashes(tmp_path)) == 1 and not (tmp_path / "results.sqlite").exists()
    first = next(iter(adapter_hashes(tmp_path)))
    stamp = (tmp_path / "experts" / first / "meta.json").stat().st_mtime_ns
    resumed = _loralab(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "experts 1/2" in resumed.stdout
    assert (tmp_path / "experts" / first / "meta.json").stat().st_mtime_ns == stamp  # not trained again
    assert adapter_hashes(tmp_path) == adapter_hashes(reference)
    assert stored_results(tmp_path) == stored_results(reference)


def test_sigkill_in_evaluation_then_rerun_stores_each_cell_once(reference: Path, tmp_path: Path) -> None:
    # batches 1-3 are the first cell (stored after them); batch 4 is the second cell's first
    killed = _loralab(tmp_path, kill_at="eval-batch:4")
    assert killed.returncode == -9
    assert cell_count(tmp_path) == (1, 1)
    resumed = _loralab(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "cells 1/4 done" in resumed.stdout
    assert cell_count(tmp_path) == (4, 4)
    assert stored_results(tmp_path) == stored_results(reference)


def test_a_partial_artifact_is_swept_and_redone(reference: Path, tmp_path: Path) -> None:
    # a kill inside the atomic write leaves a hidden temp folder: the next run deletes it and redoes the work
    stray = tmp_path / "experts" / ".tmp-ab-123-xyz"
    stray.mkdir(parents=True)
    (stray / "adapter_model.safetensors").write_bytes(b"half")
    done = _loralab(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "removed 1 partial artifact" in done.stdout and not stray.exists()
    assert stored_results(tmp_path) == stored_results(reference)


def test_the_ray_executor_trains_two_experts_at_once_and_equals_local(
    reference: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'loralab[ray]')")
    from rich.console import Console

    from loralab.artifacts import read_json
    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        plan = run(
            load_spec(SPEC, "test"),
            tmp_path,
            "test",
            executor="ray",
            console=Console(quiet=True),
            probe=False,
        )
    finally:
        ray.shutdown()
    timeline = read_json(plan.folder / "timeline.json")
    experts = [t for t in timeline if t["kind"] == "expert"]
    assert len(experts) == 2
    a, b = experts
    assert max(a["start"], b["start"]) < min(a["end"], b["end"])  # the two trainings overlapped
    assert adapter_hashes(tmp_path) == adapter_hashes(reference)
    assert stored_results(tmp_path) == stored_results(reference)
    # the cell tasks wrote each cell's diagnostics, the same cells and verdicts as the local run's
    diagnosed = sorted(d.name for d in (tmp_path / "diagnostics").iterdir())
    assert diagnosed and diagnosed == sorted(d.name for d in (reference / "diagnostics").iterdir())
    for key in diagnosed:
        ours, local = (read_json(w / "diagnostics" / key / "diagnostics.json") for w in (tmp_path, reference))
        assert ours["verdict"]["labels"] == local["verdict"]["labels"]


def test_a_bad_spec_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("name: ties", "name: tie"))
    workdir = tmp_path / "work"
    assert run_cli(["run", str(bad), "--scale", "test", "--workdir", str(workdir)], monkeypatch) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "name: tie" in t)
    assert f"bad.yaml:{line}: methods.1.name: unknown method 'tie'" in err and "Traceback" not in err
    assert not workdir.exists()
    assert run_cli(["run", str(SPEC), "--executor", "dask", "--workdir", str(workdir)], monkeypatch) == 2
    assert "--executor dask: choose local or ray" in capsys.readouterr().err
    assert not workdir.exists()


HALVES = """
name: halves
bases: [default]
datasets:
  rr: {kind: twohop, variant: RR, triplets: 100}
experts:
  ab: {train: [{dataset: rr, task: ab}], lora: {targets: mlp, r: 4, alpha: 8}}
  bc: {train: [{dataset: rr, task: bc}], lora: {targets: mlp, r: 4, alpha: 8}}
libraries:
  2-combination: [ab, bc]
  A-B alone: {experts: [ab], methods: [{name: oracle}]}
methods:
  - name: uniform
  - name: cat_learned
    options:
      epochs: 1
      data: {dataset: rr, file: ac_cot.train.jsonl, triplets: first-half}
evaluations:
  - {dataset: rr, split: test, prompting: cot, triplets: second-half}
"""


def test_library_methods_and_triplet_halves(tiny_base: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec
    from loralab.experiments.store import cells, connect
    from loralab.worlds.jsonl import read_jsonl

    spec_file = tmp_path / "halves.yaml"
    spec_file.write_text(HALVES)
    plan = run(load_spec(spec_file, "test"), tmp_path / "w", "test", console=Console(quiet=True), probe=False)
    # the library with its own methods gets one cell (oracle), the other the spec's two
    assert [(c.library, c.method) for c in plan.cells] == [
        ("2-combination", "uniform"),
        ("2-combination", "cat_learned"),
        ("A-B alone", "oracle"),
        ("ab alone", "oracle"),  # the positive controls: each expert alone on its one-hop test questions
        ("bc alone", "oracle"),
    ]
    # the test scale has 4 triplets (ids 0-3): CAT fits on triplets 0 and 1, every cell is scored on 2 and 3
    fit = Path(plan.cells[1].options["data"])
    assert {r["triplet"] for r in read_jsonl(fit)} == {0, 1} and len(
        read_jsonl(fit)
    ) == 2 * 4  # 4 train templates
    assert len({c.data for c in plan.cells[:3]}) == 1
    for name in ("ac_cot.test.jsonl", "ab.test.jsonl", "bc.test.jsonl"):
        assert {r["triplet"] for r in read_jsonl(plan.cells[0].data.parent / name)} == {2, 3}
    for control, name in zip(plan.cells[3:], ("ab.test.jsonl", "bc.test.jsonl"), strict=True):
        assert control.data.name == name and {r["triplet"] for r in read_jsonl(control.data)} == {2, 3}
    con = connect(plan.db)
    try:
        rows = cells(con, keys=[c.key for c in plan.cells])
    finally:
        con.close()
    assert [r["n"] for r in rows] == [4, 4, 4, 4, 4]  # 2 triplets x 2 held-out templates
    assert all(r["metrics"]["retained_ab"].n == 4 for r in rows[:4]) and rows[3]["metrics"]["twohop"].n == 0
    assert rows[1]["config"]["cell"]["options"]["data"]["triplets"] == "first-half"


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_ctrl_c_stops_a_run_while_a_job_is_running(executor: str, tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) while an expert trains stops the run at once with status 130, under either executor
    (under Ray, `ray.shutdown` takes the stalled worker down with the driver)."""
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is not installed (pip install 'loralab[ray]')")
    flag = tmp_path / "stalled"
    env = {**os.environ, "LORALAB_STALL_AT": "train-step:1", "LORALAB_STALL_FILE": str(flag)}
    env.pop("LORALAB_KILL_AT", None)
    cmd = [sys.executable, "-m", "loralab.cli", "run", str(SPEC), "--scale", "test", "--no-probe"]
    cmd += ["--workdir", str(tmp_path / "w"), "--executor", executor]
    # a shell starts a background job with SIGINT ignored, and the child would inherit that (a CI runner
    # started with `&` then fails this test for a reason that is not loralab's): start it with the default
    child = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while not flag.exists():  # an expert's first step has run and its job now sleeps
            assert child.poll() is None and time.monotonic() < deadline, child.stderr and child.stderr.read()
            time.sleep(0.2)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=60)
        assert code == 130, child.stderr and child.stderr.read()
        assert time.monotonic() - sent < 30
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
