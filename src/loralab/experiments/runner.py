"""The experiment runner: executes a plan (`loralab.experiments.plan`), resumable after any crash.

Datasets and experts are written into a temp folder and renamed when complete (`atomic_dir`); a cell's row
and all its example records are one SQLite transaction, and a key is stored at most once (a unique index).
So a run killed at any moment, even by SIGKILL, leaves only complete artifacts plus hidden ``.tmp-*``
folders, which the next run deletes; rerunning redoes exactly what is missing. Training and greedy decoding
are seeded and deterministic, so the resumed numbers equal an uninterrupted run's. One run at a time owns a
workdir (`workdir_lock`).

The run's own folder, ``WORKDIR/runs/RUN/``, holds the resolved spec, the plan (what `loralab status`
reads) and `meta.json` (scale, executor, wall time, provenance). RUN is the spec's name, with the scale
appended (``bridge-ablation.default``).

Executors (`EXECUTORS`): `local` runs the jobs one after another in this process; `ray`
(`loralab.experiments.ray_executor`) runs experts and cells as Ray tasks with their CPU/GPU needs declared,
a cell as soon as its experts exist, while the driver alone writes the results store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from loralab.artifacts import META, provenance, read_json_object, write_json
from loralab.diagnose import CHEAP
from loralab.errors import LoralabError, did_you_mean
from loralab.experiments.plan import (
    CellJob,
    Plan,
    cell_where,
    diagnose_job,
    evaluate_job,
    load_plan,
    plan,
    read_run_meta,
    stale_diagnostics,
    store_cell,
    stored,
    stored_rows,
    train_job,
    what,
)
from loralab.experiments.ray_executor import execute_ray
from loralab.experiments.spec import ExperimentSpec


@contextlib.contextmanager
def workdir_lock(workdir: Path) -> Iterator[None]:
    """One run at a time per workdir (it owns the temp folders and the store while it runs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LoralabError(f"--workdir {workdir}: another loralab run is using it") from None
        yield


def _sweep_partials(workdir: Path) -> int:
    """Delete the temp folders a killed run left behind; their artifacts are redone."""
    swept = 0
    for kind in ("datasets", "subsets", "experts"):
        for tmp in (workdir / kind).glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
            swept += 1
    return swept


def _familiarity(base: str) -> Any:
    """The base's familiarity probe, when the probes are available (stored in the run's metadata)."""
    import importlib

    try:
        probes = importlib.import_module("loralab.probes.familiarity")
    except ImportError:
        return None
    return probes.familiarity_summary(base)


def check_not_narrowed(p: Plan, meta: dict[str, Any]) -> None:
    """A rerun that drops seeds or grid points that an earlier run of the folder asked for with `--seeds` or
    `--only` would rewrite the plan, and its status and report would quietly lose them (a resume that forgot
    `--seeds 0,1,2`): that is an error naming what would be dropped. (A spec edited to fewer seeds is the
    spec's say and replans.) `meta`: the folder's meta.json, whose `overrides` the last run wrote. Narrowing on
    purpose: delete plan.json first."""
    path = p.folder / "plan.json"
    asked = " ".join(map(str, meta.get("overrides") or []))
    if not asked or not path.is_file():
        return
    try:
        before = [c["record"] for c in read_json_object(path).get("cells", [])]
        seeds = {r["seed"] for r in before}
        points = {json.dumps(r.get("point", {}), sort_keys=True) for r in before}
    except (LoralabError, TypeError, KeyError):
        return  # a damaged or older plan is replaced (load_plan says what is wrong with it if asked)
    now = [c.record for c in p.cells]
    lost_seeds = sorted(seeds - {r["seed"] for r in now})
    lost_points = sorted(points - {json.dumps(r.get("point", {}), sort_keys=True) for r in now})
    if not (lost_seeds or lost_points):
        return
    if lost_seeds:
        dropped = f"seed(s) {', '.join(map(str, lost_seeds))}"
        fix = f"pass --seeds {','.join(map(str, sorted(seeds)))} to resume it"
    else:
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in json.loads(x).items()) for x in lost_points[:3])
        dropped = f"grid point(s) {shown}{' ...' if len(lost_points) > 3 else ''}"
        fix = "run without --only (or with the same --only) to resume it"
    raise LoralabError(
        f"{p.folder}: was run with {asked}; its plan also holds {dropped}, which this run would drop from the "
        f"plan, status and report (their results stay stored); {fix}, or delete {path.name} there to narrow "
        "it on purpose"
    )


def run(
    spec: ExperimentSpec,
    workdir: Path,
    scale: str | None = None,
    executor: str = "local",
    address: str | None = None,
    console: Console | None = None,
    probe: bool = True,
    spec_path: str | None = None,
    diagnostics: Sequence[str] = CHEAP,
    overrides: Sequence[str] = (),
) -> Plan:
    """Run (or resume) every missing job of the spec (already resized for `scale`, which names the run
    folder); return the plan (results are in `plan.db`). With
    `probe`, each base's familiarity probe goes into the run's metadata (measured once per base, cached).
    `diagnostics`: the parts of `loralab.diagnose` measured per evaluated cell (either executor), kept in
    WORKDIR/diagnostics/CELL_KEY/; then for the stored cells whose diagnostics are missing or older
    (`rediagnose`). `overrides` (`--seeds ...`, `--only ...`, as given) are kept in meta.json: the report's
    resume command repeats them, and a later run that would drop seeds or grid points they asked for is
    refused (`check_not_narrowed`)."""
    if executor not in EXECUTORS:
        choices = " or ".join(EXECUTORS)
        raise LoralabError(f"--executor {executor}: choose {choices}{did_you_mean(executor, EXECUTORS)}")
    console = console or Console()
    start = time.time()
    workdir = Path(workdir)
    with workdir_lock(workdir):
        swept = _sweep_partials(workdir)
        if swept:
            console.print(f"removed {swept} partial artifact(s) of an interrupted run; they are redone")
        p = plan(
            spec,
            workdir,
            scale,
            lambda d: console.print(f"  building dataset {d.path.name}"),
            lambda line: console.print(f"  {line}", highlight=False, markup=False),
        )
        meta_path = p.folder / META
        meta = read_run_meta(p.folder) or {"sessions": []}
        check_not_narrowed(p, meta)
        write_json(p.folder / "spec.json", spec.model_dump())
        write_json(p.folder / "plan.json", p.to_json())
        session: dict[str, Any] = {
            "scale": scale,
            "executor": executor,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        meta["sessions"].append(session)
        meta.update(
            name=spec.name,
            run=p.run,
            scale=scale,
            spec_path=spec_path,
            overrides=list(overrides),
            **provenance(),
        )
        if probe:
            console.print("familiarity probe of the base(s) (once per base; --no-probe skips it)")
            meta["familiarity"] = {name: _familiarity(b) for name, b in p.bases.items()}
        write_json(meta_path, meta)
        console.print(describe(p), highlight=False)
        EXECUTORS[executor].execute(p, Execution(console, address, tuple(diagnostics)))
        rediagnose(p, console, tuple(diagnostics))
        session["seconds"] = round(time.time() - start, 1)
        session["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ")
        write_json(meta_path, meta)
    console.print(f"{p.run}: all {len(p.cells)} cells done in {time.time() - start:.0f} s; results {p.db}")
    return p


def describe(p: Plan) -> str:
    done_d = sum(d.done() for d in p.datasets.values())
    done_e = sum(e.done() for e in p.experts.values())
    done_c = len(stored(p))
    return (
        f"{p.run}: datasets {done_d}/{len(p.datasets)}, experts {done_e}/{len(p.experts)}, "
        f"cells {done_c}/{len(p.cells)} done"
    )


def _stage(
    console: Console, title: str, jobs: list[Any], work: Callable[[Any], str], total: int | None = None
) -> None:
    """Run `jobs` one by one, a progress bar and one log line each (`work` returns the line)."""
    from loralab.progress import progress

    if not jobs:
        return
    with progress() as bar:
        task = bar.add_task(title, total=len(jobs))
        for i, job in enumerate(jobs, 1):
            t0 = time.time()
            line = work(job)
            bar.update(task, advance=1)
            console.print(f"  [{i}/{len(jobs)}] {line} ({time.time() - t0:.0f} s)", highlight=False)


def execute_local(p: Plan, console: Console, diagnostics: Sequence[str] = ()) -> None:
    """Experts, then cells (the plan built the datasets), each skipped when already complete; then each new
    cell's `diagnostics` parts (`loralab.diagnose.cell`)."""
    _stage(
        console,
        "experts",
        [e for e in p.experts.values() if not e.done()],
        lambda e: f"trained {train_job(e).name}",
    )
    have = stored(p)

    def evaluate_one(job: CellJob) -> str:
        cell, rows = evaluate_job(job, p.run, [p.experts[k].path for k in job.experts])
        store_cell(p, job, cell, rows)
        diagnose_job(p, job, rows, tuple(diagnostics))
        return f"{what(job)} ({cell_where(job)}): {cell['accuracy']:.3f}"

    _stage(console, "cells", [c for c in p.cells if c.key not in have], evaluate_one)


def rediagnose(p: Plan, console: Console, parts: Sequence[str]) -> None:
    """Diagnose, in this process, the cells stored before this session whose diagnostics are missing or were
    measured by an older `loralab.diagnose` (`stale_diagnostics`), from their stored outputs: nothing is
    evaluated again."""
    jobs = stale_diagnostics(p, parts)

    def one(job: CellJob) -> str:
        done = diagnose_job(p, job, stored_rows(p, job), tuple(parts))
        return f"diagnosed {what(job)} ({cell_where(job)})" + ("" if done else ": no probes")

    _stage(console, "diagnostics of cells evaluated earlier", jobs, one)


@dataclass(frozen=True)
class Execution:
    """How a plan is executed, apart from what it computes: where to log, the Ray cluster to join (None:
    start one), the `loralab.diagnose` parts measured per evaluated cell (either executor)."""

    console: Console
    address: str | None = None
    diagnostics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Executor:
    name: str
    description: str
    execute: Callable[[Plan, Execution], None]


EXECUTORS: dict[str, Executor] = {
    e.name: e
    for e in (
        Executor(
            "local",
            "one process, jobs one after another; per-cell diagnostics",
            lambda p, x: execute_local(p, x.console, x.diagnostics),
        ),
        Executor(
            "ray",
            "experts and cells as Ray tasks, a cell (and its diagnostics) as soon as its experts exist "
            "(pip install 'loralab[ray]')",
            lambda p, x: execute_ray(p, x.address, x.console, x.diagnostics),
        ),
    )
}


def status(folder: Path) -> dict[str, Any]:
    """What is done and what remains in a run folder."""
    p = load_plan(folder)
    have = stored(p)
    partial = sorted(t.name for kind in ("datasets", "experts") for t in (p.workdir / kind).glob(".tmp-*"))
    meta = read_run_meta(p.folder)
    return {
        "run": p.run,
        "datasets": [(d.label, d.done()) for d in p.datasets.values()],
        "experts": [(f"{e.name} ({e.path.name})", e.done()) for e in p.experts.values()],
        "cells": [(f"{what(c)} ({cell_where(c)})", c.key in have) for c in p.cells],
        "partial": partial,
        "sessions": meta.get("sessions", []),
    }
