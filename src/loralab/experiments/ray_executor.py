"""The Ray executor: experts and cells as Ray tasks, scheduled as soon as their inputs exist.

The plan has built the datasets (seconds of CPU); the driver submits every missing expert as a task that declares
one CPU (and one GPU when the cluster has GPUs). Each cell waiting on experts is submitted the moment the
last of them is trained. Tasks write only their own artifacts (expert folders, atomically, on a filesystem
the cluster shares); a cell task returns its rows and the driver alone writes the results store, so there
is one writer and the store's content-key index sees every insert; a cell task also writes the cell's
diagnostics (``diagnostics/CELL_KEY/``) before it returns. The start and end of every task go to
``runs/RUN/timeline.json``.

Ray is optional: ``pip install 'loralab[ray]'``. With `address` None and no Ray running in this process, a
local Ray instance with this machine's CPUs is started (and stopped at the end); a test or a user may
``ray.init(...)`` first, and that instance is used.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from loralab.artifacts import write_json
from loralab.errors import LoralabError
from loralab.experiments.plan import (
    CellJob,
    ExpertJob,
    Plan,
    cell_where,
    diagnose_job,
    evaluate_job,
    store_cell,
    stored,
    train_job,
    what,
)

CPUS_PER_TASK = 1


def _timed_train(job: ExpertJob, threads: int) -> tuple[str, float, float]:
    start = time.time()
    path = train_job(job, threads)
    return str(path), start, time.time()


def _timed_evaluate(
    job: CellJob, p: Plan, threads: int, parts: tuple[str, ...]
) -> tuple[dict[str, Any], list[dict[str, Any]], float, float]:
    """Evaluate one cell, then write its diagnostics (in the task: the workdir is shared); the driver
    stores the rows."""
    start = time.time()
    cell, rows = evaluate_job(job, p.run, [p.experts[k].path for k in job.experts], threads)
    diagnose_job(p, job, rows, parts)
    return cell, rows, start, time.time()


def execute_ray(p: Plan, address: str | None, console: Console, parts: tuple[str, ...] = ()) -> None:
    try:
        import ray
    except ImportError:
        raise LoralabError("--executor ray: Ray is not installed (pip install 'loralab[ray]')") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"--address {address}" if address else "a local Ray instance"
            raise LoralabError(f"{where}: cannot start or join Ray ({str(exc).splitlines()[0]})") from None
    try:
        _schedule(p, ray, console, parts)
    finally:
        if started_here:
            ray.shutdown()


def _schedule(p: Plan, ray: Any, console: Console, parts: tuple[str, ...]) -> None:
    gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    train = ray.remote(num_cpus=CPUS_PER_TASK, num_gpus=gpus, max_retries=0)(_timed_train)
    evaluate = ray.remote(num_cpus=CPUS_PER_TASK, num_gpus=gpus, max_retries=0)(_timed_evaluate)
    pending: dict[Any, tuple[str, Any]] = {}
    for e in p.experts.values():
        if not e.done():
            pending[train.remote(e, CPUS_PER_TASK)] = ("expert", e)
    ready = {k for k, e in p.experts.items() if e.done()}
    have = stored(p)
    waiting = [c for c in p.cells if c.key not in have]
    timeline: list[dict[str, Any]] = []
    total = len(pending) + len(waiting)
    finished = 0

    def submit_ready() -> None:
        for c in [c for c in waiting if all(k in ready for k in c.experts)]:
            pending[evaluate.remote(c, p, CPUS_PER_TASK, parts)] = ("cell", c)
            waiting.remove(c)

    submit_ready()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        kind, job = pending.pop(done[0])
        try:
            result = ray.get(done[0])
        except Exception as exc:  # a task's error arrives wrapped; say which job failed and why
            cause = getattr(exc, "cause", None) or exc
            raise LoralabError(
                f"{kind} {getattr(job, 'name', job.key)}: failed in a Ray task ({cause})"
            ) from None
        finished += 1
        if kind == "expert":
            _, start, end = result
            ready.add(job.key)
            line = f"trained {job.path.name}"
            submit_ready()
        else:
            cell, rows, start, end = result
            store_cell(p, job, cell, rows)
            line = f"{what(job)} ({cell_where(job)}): {cell['accuracy']:.3f}"
        timeline.append({"kind": kind, "key": job.key, "start": start, "end": end})
        console.print(f"  [{finished}/{total}] {line} ({end - start:.0f} s, Ray)", highlight=False)
        write_json(p.folder / "timeline.json", timeline)
    if waiting:  # cannot happen with a consistent plan: every expert a cell needs was trained or submitted
        raise LoralabError(f"{p.run}: {len(waiting)} cell(s) were left without their experts")
