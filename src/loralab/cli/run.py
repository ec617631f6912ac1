"""`loralab run`, `status`, `report`, `validate` and `quickstart`: experiments from specs, and their reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from loralab.artifacts import check_output
from loralab.cli.options import RESULT_DROP, Scale, Workdir, console, error_line, preset_alias, renamed
from loralab.errors import LoralabError, did_you_mean
from loralab.report.paper import DEFAULT_MODEL
from loralab.terminal import print_table


def check_workdir(workdir: Path) -> None:
    """A workdir must be writable, and what loralab keeps in it, if there, of the right kind: a file named
    `runs` made the quick start fail after building the base and the datasets."""
    check_output(workdir, "--workdir")
    for name, folder in (("datasets", True), ("experts", True), ("runs", True), ("results.sqlite", False)):
        path = workdir / name
        if path.exists() and path.is_dir() != folder:
            kind = "a folder" if folder else "a file"
            raise LoralabError(f"--workdir {workdir}: {path} must be {kind} (loralab keeps its {name} there)")


def quickstart_cmd(
    workdir: Workdir = Path("loralab-work"),
    scale: Scale = None,
    probe: Annotated[
        bool, typer.Option(help="store the base's familiarity probe in the run's metadata (cached per base)")
    ] = True,
    preset: Annotated[str | None, preset_alias("--scale")] = None,
) -> None:
    """The 7-minute quick start, an alias of `loralab run` on its spec (src/loralab/experiments/quickstart.yaml)
    followed by `loralab report`: builds the default base if missing, trains A->B, B->C and oracle experts,
    evaluates the base, each expert alone and the 2- and 3-combination (Uniform, Arrow) on held-out two-hop
    questions with CoT, and prints the report. A rerun resumes where it stopped and adds no row.

    Example: loralab quickstart
    """
    from loralab.experiments.quickstart import quickstart

    check_workdir(workdir)
    report = quickstart(workdir, renamed("--scale", scale, preset), console, probe)
    sys.stdout.write(report.markdown())
    files = ", ".join(report.files())
    console.print(f"{report.progress()}; wrote {report.folder / 'report'} ({files})", markup=False)


def report_cmd(
    path: Annotated[
        Path, typer.Argument(help="a run folder (WORKDIR/runs/NAME[.SCALE]) or a results database (.sqlite)")
    ],
    out: Annotated[
        Path | None, typer.Option(help="run folder: where the report goes (default RUN_FOLDER/report)")
    ] = None,
    paper_model: Annotated[
        str, typer.Option(help="run folder: the paper's model whose numbers stand beside ours")
    ] = DEFAULT_MODEL,
    fmt: Annotated[str, typer.Option("--format", help="database: table, markdown or csv")] = "table",
    run: Annotated[str | None, typer.Option(help="database: only this run")] = None,
    by_triplet: Annotated[
        bool, typer.Option(help="database: also two-hop questions by their triplet's retention, right/wrong")
    ] = False,
    digest: Annotated[
        bool,
        typer.Option(
            help="run folder: print the controls and cells as two compact tables, one line each (pooled, "
            "each seed, between-seed interval, retention, confounded), instead of the whole report"
        ),
    ] = False,
) -> None:
    """Report a run: its table laid out like the paper's (n, 95% interval, seeds pooled, the paper's number
    beside ours), figures, and metadata, written as report.md, report.csv, report.json, report.html and
    figures/*.png; the Markdown is printed. Given a results database instead, print its cells as one table.

    Example: loralab report loralab-work/runs/bridge-ablation.default
    """
    if path.is_dir():
        given = [
            f
            for f, on in (
                ("--format", fmt != "table"),
                ("--run", run is not None),
                ("--by-triplet", by_triplet),
            )
            if on
        ]
        if given:
            raise LoralabError(f"{', '.join(given)}: only with a results database, not a run folder")
        from loralab.report.build import build_report, check_report_folder, write_report
        from loralab.report.paper import paper_rows

        models = {str(r.get("model")) for r in paper_rows()}
        if paper_model not in models:
            hint = did_you_mean(paper_model, models)
            raise LoralabError(f"--paper-model {paper_model}: not a model of the paper's tables{hint}")
        if out is not None:
            check_output(out, "--out")
            check_report_folder(out)
        built = build_report(path, paper_model)
        written = write_report(built, out)
        if digest:
            from loralab.report.digest import digest as compact

            sys.stdout.write(compact(json.loads(built.json())))
        else:
            sys.stdout.write(built.markdown())
        files = ", ".join(built.files())
        console.print(f"{built.progress()}; wrote {written} ({files})", highlight=False, markup=False)
        return
    if out is not None or digest or paper_model != DEFAULT_MODEL:
        flag = "--out" if out is not None else "--digest" if digest else "--paper-model"
        raise LoralabError(f"{flag}: only with a run folder ({path} is not a folder)")
    if run is not None and not run.strip():
        raise LoralabError("--run '': give the name of a run stored in the database")
    _report_db(path, fmt, run, by_triplet)


def _report_db(db: Path, fmt: str, run: str | None, by_triplet: bool) -> None:
    """Print the result table of a results database (with retention columns where the cells have them)."""
    from loralab.evaluation.retention import by_triplet as breakdown
    from loralab.experiments.store import cells, connect, examples
    from loralab.report.table import by_triplet_markdown, markdown, rich_table, store_records, to_csv

    if fmt not in ("table", "markdown", "csv"):
        raise LoralabError(f"--format {fmt}: choose table, markdown or csv")
    con = connect(db, create=False)
    rows = cells(con, run)
    tables = [breakdown(examples(con, r["id"])) for r in rows] if by_triplet else []
    con.close()
    if not rows:
        raise LoralabError(f"{db}: no results" + (f" for run {run}" if run else ""))
    if by_triplet:
        sys.stdout.write(by_triplet_markdown(rows, tables) + "\n")
    if fmt == "table":
        print_table(console, rich_table(rows), drop=RESULT_DROP)
    else:
        sys.stdout.write(markdown(rows) if fmt == "markdown" else to_csv(store_records(rows)))


def validate_cmd(
    spec: Annotated[Path, typer.Argument(help="an experiment spec (YAML)")],
    scale: Scale = None,
    preset: Annotated[str | None, preset_alias("--scale")] = None,
) -> None:
    """Check an experiment spec without running anything: keys, types, names, option ranges, grid; print what
    it expands to, or every problem found (one line each).

    Example: loralab validate experiments/paper/bridge-ablation.yaml --scale default
    """
    from loralab.experiments.spec import check_spec, summary

    loaded, problems = check_spec(spec, renamed("--scale", scale, preset))
    if loaded is None:
        for line in problems:
            error_line(line)
        raise SystemExit(2)
    console.print(summary(loaded), highlight=False, markup=False)


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2`: distinct non-negative integers below `SEED_LIMIT`, in the order given."""
    from loralab.experts.config import SEED_LIMIT

    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise LoralabError(f"--seeds {text}: expected distinct non-negative integers, e.g. 0,1,2")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise LoralabError(f"--seeds {text}: a seed is repeated (it would run the same cells twice)")
    if max(seeds) >= SEED_LIMIT:
        raise LoralabError(f"--seeds {text}: seeds must be below 2**32 ({SEED_LIMIT})")
    return seeds


def restrict_grid(spec: Any, only: list[str]) -> Any:
    """`--only AXIS=V1,V2`: keep those values of one of the spec's grid axes (repeatable, one axis each)."""
    grid = dict(spec.grid)
    seen: set[str] = set()
    for item in only:
        axis, sep, values = item.partition("=")
        if axis in seen:
            raise LoralabError(f"--only {item}: {axis} is given twice; list its values once, e.g. {axis}=A,B")
        seen.add(axis)
        wanted = [v.strip() for v in values.split(",")]
        if not sep or not all(wanted):
            raise LoralabError(
                f"--only {item}: expected AXIS=VALUE[,VALUE...], e.g. datasets.data.variant=RR"
            )
        if axis not in grid:
            axes = ", ".join(grid) or "none: the spec has no grid"
            raise LoralabError(
                f"--only {item}: {axis!r} is not a grid axis (axes: {axes}){did_you_mean(axis, grid)}"
            )
        by_text = {str(v): v for v in grid[axis]}
        unknown = [w for w in wanted if w not in by_text]
        if unknown:
            raise LoralabError(
                f"--only {item}: {unknown[0]!r} is not a value of {axis} (values: {', '.join(by_text)})"
            )
        grid[axis] = [by_text[w] for w in dict.fromkeys(wanted)]
    return spec.model_copy(update={"grid": grid})


def run_cmd(
    spec: Annotated[Path, typer.Argument(help="an experiment spec (YAML), e.g. experiments/paper/*.yaml")],
    scale: Scale = None,
    workdir: Workdir = Path("loralab-work"),
    executor: Annotated[str, typer.Option(help="local (one process) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="ray: the cluster to join (default: start one)")] = None,
    probe: Annotated[
        bool, typer.Option(help="store the base's familiarity probe in the run's metadata (cached per base)")
    ] = True,
    diagnostics: Annotated[
        str,
        typer.Option(
            help="per cell: cheap (routing, geometry, whose answers), full (+ strength, attribution) or none; "
            "stored cells "
            "lacking them, or diagnosed by an older loralab, are diagnosed from their outputs"
        ),
    ] = "cheap",
    seeds: Annotated[
        str | None,
        typer.Option(
            help="comma-separated seeds replacing the spec's `seeds`, e.g. 0,1,2 (data draw + training)"
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="AXIS=V1,V2: run only these values of one grid axis (repeatable), e.g. "
            "datasets.data.variant=RR; cells and experts are shared with the whole grid's run by content"
        ),
    ] = None,
    preset: Annotated[str | None, preset_alias("--scale")] = None,
) -> None:
    """Run an experiment: build its datasets, train its experts, evaluate every cell; resume where it stopped.

    Every artifact is named by the hash of what determines it, so rerunning (after a crash, or with a spec
    that shares experts) only does what is missing. Results go to WORKDIR/results.sqlite; the run's folder
    is WORKDIR/runs/NAME[.SCALE] (loralab status / loralab report take it).

    Example: loralab run experiments/paper/bridge-ablation.yaml --scale default --seeds 0,1,2
    """
    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec

    scale = renamed("--scale", scale, preset)
    loaded = load_spec(spec, scale)
    if seeds is not None:
        loaded = loaded.model_copy(update={"seeds": parse_seeds(seeds)})
    if only:
        loaded = restrict_grid(loaded, only)
    if address is not None and executor != "ray":
        raise LoralabError("--address: only with --executor ray")
    if executor not in ("local", "ray"):
        raise LoralabError(
            f"--executor {executor}: choose local or ray{did_you_mean(executor, ('local', 'ray'))}"
        )
    check_workdir(workdir)
    from loralab.diagnose import CHEAP, PARTS

    levels = {"cheap": CHEAP, "full": PARTS, "none": ()}
    if diagnostics not in levels:
        raise LoralabError(f"--diagnostics {diagnostics}: choose cheap, full or none")
    overrides = ([f"--seeds {seeds}"] if seeds is not None else []) + [f"--only {o}" for o in only or []]
    plan = run(
        loaded, workdir, scale, executor, address, console, probe, str(spec), levels[diagnostics], overrides
    )
    console.print(f"report: loralab report {plan.folder}", highlight=False)


def status_cmd(
    run_folder: Annotated[Path, typer.Argument(help="a run folder, WORKDIR/runs/NAME[.SCALE]")],
    all_items: Annotated[bool, typer.Option("--all", help="list done items too")] = False,
) -> None:
    """What a run has done and what remains (datasets, experts, cells), and its sessions so far.

    Example: loralab status loralab-work/runs/bridge-ablation.default
    """
    from loralab.experiments.runner import status

    info = status(run_folder)
    for stage in ("datasets", "experts", "cells"):
        items = info[stage]
        done = sum(ok for _, ok in items)
        console.print(f"{stage}: {done}/{len(items)} done", highlight=False)
        for label, ok in items:
            if all_items or not ok:
                console.print(f"  {'done' if ok else 'todo'}  {label}", highlight=False, markup=False)
    if info["partial"]:
        console.print(f"partial (redone on the next run): {', '.join(info['partial'])}", markup=False)
    for s in info["sessions"]:
        took = f"{s['seconds']} s" if "seconds" in s else "interrupted or running"
        console.print(f"session {s['started']} ({s['executor']}): {took}", highlight=False)
