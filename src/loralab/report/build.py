"""`loralab report RUN_FOLDER`: a run's tables, figures and metadata, written as Markdown, CSV and HTML.

`build_report` reads a run folder (``WORKDIR/runs/NAME.PRESET``: its plan and meta.json) and the workdir's
results store, keeps the stored cells whose keys are in the plan, pools them over seeds and lays them out
like the paper's table for the experiment (`loralab.report.layouts`). Every view opens with the positive
controls (`loralab.report.controls`: values, intervals, verdicts), and marks the cells they confound.
`write_report` writes ``report.md``, ``report.csv`` (the tidy table every view is drawn from, its control
rows first), ``report.json`` (the same tidy records, controls and cells apart), ``report.html``
(self-contained: inline CSS, figures as data URIs) and ``figures/*.png`` into one folder, atomically: a temp
folder renamed when complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.artifacts import META, atomic_dir, read_json
from loralab.report import controls as pc
from loralab.report.diagnostics import diagnostics_tables
from loralab.report.layouts import (
    COLUMNS,
    ReportTable,
    build_table,
    layout_for,
    pool,
    retention_table,
    seeds_table,
    tidy_rows,
)
from loralab.report.notes import FIGURE_TITLES, caution
from loralab.report.paper import DEFAULT_MODEL
from loralab.report.table import to_csv


@dataclass
class RunReport:
    """Everything a report shows; `markdown()` is what the terminal prints and report.md holds."""

    run: str
    experiment: str
    folder: Path
    workdir: Path
    meta: dict[str, Any]
    total: int
    done: int
    tables: list[ReportTable]
    figures: dict[str, bytes]
    tidy: list[dict[str, Any]]
    """The tidy table's records (`loralab.report.layouts.tidy_rows`): report.csv and report.json."""
    model: str
    controls: ReportTable
    control_results: list[pc.ControlResult]
    expert_seconds: tuple[float, ...] = ()
    """Training time of each of the plan's trained experts (their meta.json), whichever session trained it."""

    @property
    def complete(self) -> bool:
        return self.done == self.total

    def resume_command(self) -> str:
        preset = self.meta.get("preset")
        flag = f" --preset {preset}" if preset else ""
        return f"loralab run {self.meta.get('spec_path') or 'SPEC'}{flag} --workdir {self.workdir}"

    def progress(self) -> str:
        """``N of M cells done``, with how to finish when some are missing."""
        line = f"{self.done} of {self.total} cells done"
        if not self.complete:
            known = self.meta.get("spec_path")
            where = "" if known else f"; SPEC: the spec named {self.experiment!r}"
            line += f" (run `{self.resume_command()}` to finish{where})"
        return line

    def files(self) -> list[str]:
        """What `write_report` writes, relative to its folder."""
        files = ["report.md", "report.csv", "report.json", "report.html"]
        return [*files, *(f"figures/{name}" for name in self.figures)]

    @property
    def csv(self) -> str:
        return to_csv(self.tidy, COLUMNS)

    def json(self) -> str:
        """report.json: the run, its progress, the column order, then the tidy records of the controls and
        of the cells (None where the CSV is empty; fractions unrounded; seed_values as [seed, accuracy])."""
        doc = {
            "run": self.run,
            "experiment": self.experiment,
            "preset": self.meta.get("preset"),
            "cells_done": self.done,
            "cells_total": self.total,
            "model": self.model,
            "columns": list(COLUMNS),
            "controls": [r for r in self.tidy if r["section"] == "control"],
            "cells": [r for r in self.tidy if r["section"] == "cell"],
        }
        return json.dumps(doc, indent=1, allow_nan=False) + "\n"

    def wall_time(self) -> str:
        sessions = self.meta.get("sessions", [])
        seconds = sum(float(s.get("seconds", 0.0)) for s in sessions)
        open_ = sum("seconds" not in s for s in sessions)
        text = f"{seconds:.0f} s over {len(sessions)} session(s)"
        text += f", {open_} interrupted or still running" if open_ else ""
        if self.expert_seconds:
            t = self.expert_seconds
            text += (
                f"; its {len(t)} experts trained in {sum(t):.0f} s in all "
                f"({min(t):.0f}-{max(t):.0f} s each, whichever session trained them)"
            )
        return text

    def markdown(self) -> str:
        head = [
            f"# {self.run}",
            "",
            *([self.controls.markdown().replace("### ", "## ", 1)] if self.control_results else []),
            pc.summary(self.control_results),
            "",
            f"- experiment: {self.experiment}; preset: {self.meta.get('preset') or '-'}",
            f"- {self.progress()}",
            f"- wall time: {self.wall_time()}",
            f"- loralab {self.meta.get('loralab', '?')}, git {self.meta.get('git_revision') or '?'}",
            "",
        ]
        warning = caution(self.meta)
        if warning:
            head[1:1] = ["", f"> **{warning}**"]
        body = [t.markdown() for t in self.tables]
        figures = [f"![{FIGURE_TITLES.get(name, name)}](figures/{name})" for name in self.figures]
        return "\n".join([*head, *body, *figures]) + "\n"


def _stored(plan: Any, keys: list[str]) -> dict[str, dict[str, Any]]:
    from loralab.experiments.store import cells, connect

    if not plan.db.is_file():
        return {}
    con = connect(plan.db, create=False)
    try:
        return {row["key"]: row for row in cells(con, keys=keys)}
    finally:
        con.close()


def build_report(folder: Path, model: str = DEFAULT_MODEL) -> RunReport:
    """Read a run folder and its results; lay out its tables and draw its figures."""
    from loralab.experiments.plan import load_plan
    from loralab.report.figures import bars, setups_figure

    plan = load_plan(folder)
    meta_path = Path(folder) / META
    meta: dict[str, Any] = read_json(meta_path) if meta_path.is_file() else {}
    keys = list(dict.fromkeys(c.key for c in plan.cells))
    stored = _stored(plan, keys)
    groups = pool(plan, stored)
    results = pc.compute_controls(plan, stored)
    pc.mark_confounded(groups, results)
    experiment = str(plan.cells[0].record.get("experiment", plan.run)) if plan.cells else plan.run
    layout = layout_for(experiment)
    tables = [build_table(layout, groups, model)]
    for extra in (seeds_table(layout, groups), retention_table(layout, groups)):
        if extra is not None:
            tables.append(extra)
    tables += diagnostics_tables(plan, stored)
    figures: dict[str, bytes] = {}
    drawn = bars(layout, groups, tables[0].title, model)
    if drawn is not None:
        figures["bars.png"] = drawn
    setups = setups_figure(groups, model)
    if setups is not None:
        figures["figure2.png"] = setups
    return RunReport(
        plan.run,
        experiment,
        Path(folder),
        plan.workdir,
        meta,
        len(keys),
        len(stored),
        tables,
        figures,
        tidy_rows(groups, model, pc.tidy_rows(results)),
        model,
        pc.controls_table(results),
        results,
        tuple(
            float(read_json(e.path / META).get("train_seconds", 0.0))
            for e in plan.experts.values()
            if (e.path / META).is_file()
        ),
    )


def write_report(report: RunReport, out: Path | None = None) -> Path:
    """Write report.md, report.csv, report.json, report.html and figures/*.png into `out` (default RUN_FOLDER/report),
    replacing an older report there only once the new one is complete."""
    from loralab.report.html import render_html

    final = Path(out) if out is not None else report.folder / "report"
    with atomic_dir(final, overwrite=True) as tmp:
        tmp.chmod(0o755)  # mkdtemp's 0700 would keep a shared report private
        (tmp / "report.md").write_text(report.markdown())
        (tmp / "report.csv").write_text(report.csv)
        (tmp / "report.json").write_text(report.json())
        (tmp / "report.html").write_text(render_html(report))
        if report.figures:
            (tmp / "figures").mkdir()
            for name, png in report.figures.items():
                (tmp / "figures" / name).write_bytes(png)
    return final
