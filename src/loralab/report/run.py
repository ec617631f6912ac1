"""What a run's report shows (`RunReport`): the one object that the Markdown, CSV, JSON and HTML renderers
read; `build.py` fills it from a run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.report import controls as pc
from loralab.report.layouts import COLUMNS, ReportTable
from loralab.report.notes import FIGURE_TITLES, caution, scale_of
from loralab.report.table import to_csv


def stored_cells(plan: Any, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The workdir's stored cells whose content keys are in `keys`, by key (empty without a store)."""
    from loralab.experiments.store import cells, connect

    if not plan.db.is_file():
        return {}
    con = connect(plan.db, create=False)
    try:
        return {row["key"]: row for row in cells(con, keys=keys)}
    finally:
        con.close()


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
        scale = scale_of(self.meta)
        flag = f" --scale {scale}" if scale else ""
        asked = "".join(f" {o}" for o in self.meta.get("overrides") or [])  # --seeds 0,1,2, --only AXIS=V
        return f"loralab run {self.meta.get('spec_path') or 'SPEC'}{flag}{asked} --workdir {self.workdir}"

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
            "scale": scale_of(self.meta),
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
            f"- experiment: {self.experiment}; scale: {scale_of(self.meta) or '-'}",
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
