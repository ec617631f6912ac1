"""`loralab report RUN_FOLDER`: a run's tables, figures and metadata, written as Markdown, CSV and HTML.

`build_report` reads a run folder (``WORKDIR/runs/NAME.SCALE``: its plan and meta.json) and the workdir's
results store, keeps the stored cells whose keys are in the plan, pools them over seeds and lays them out
like the paper's table for the experiment (`loralab.report.layouts`). Every view opens with the positive
controls (`loralab.report.controls`: values, intervals, verdicts), and marks the cells they confound.
`write_report` writes ``report.md``, ``report.csv`` (the tidy table every view is drawn from, its control
rows first), ``report.json`` (the same tidy records, controls and cells apart), ``report.html``
(self-contained: inline CSS, figures as data URIs) and ``figures/*.png`` into one folder, atomically: a temp
folder renamed when complete.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from loralab.artifacts import META, atomic_dir, check_replaceable, read_json
from loralab.errors import LoralabError
from loralab.experiments.schema import TableSpec
from loralab.report import controls as pc
from loralab.report.diagnostics import diagnostics_tables
from loralab.report.html import render_html
from loralab.report.layouts import (
    build_table,
    layout_for,
    pool,
    retention_table,
    seeds_table,
    tidy_rows,
)
from loralab.report.paper import DEFAULT_MODEL
from loralab.report.run import RunReport, stored_cells
from loralab.report.views import spec_tables


def _declared_tables(folder: Path) -> list[TableSpec]:
    """The report tables the run's spec declares (`tables:`), from its resolved spec.json."""
    path = folder / "spec.json"
    if not path.is_file():
        return []
    spec = read_json(path)
    raw = spec.get("tables") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(raw, list | None):
        what = "not a JSON object" if not isinstance(spec, dict) else "tables: not a list"
        raise LoralabError(f"{path}: {what} (a damaged run folder: run the spec again to rewrite it)")
    tables = []
    for i, table in enumerate(raw or []):
        try:
            tables.append(TableSpec.model_validate(table))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in (i, *first["loc"]))
            raise LoralabError(f"{path}: tables.{where}: {first['msg']}") from None
    return tables


def build_report(folder: Path, model: str = DEFAULT_MODEL) -> RunReport:
    """Read a run folder and its results; lay out its tables and draw its figures."""
    from loralab.experiments.plan import load_plan, read_run_meta
    from loralab.report.figures import bars, setups_figure

    plan = load_plan(folder)
    meta = read_run_meta(Path(folder))
    keys = list(dict.fromkeys(c.key for c in plan.cells))
    stored = stored_cells(plan, keys)
    groups = pool(plan, stored)
    results = pc.compute_controls(plan, stored)
    pc.mark_confounded(groups, results)
    experiment = str(plan.cells[0].record.get("experiment", plan.run)) if plan.cells else plan.run
    layout = layout_for(experiment)
    declared = _declared_tables(Path(folder))
    tables = spec_tables(declared, groups) if declared else [build_table(layout, groups, model)]
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


REPORT_FILES = frozenset({"report.md", "report.csv", "report.json", "report.html", "figures"})
"""What a report folder holds; a folder with anything else is never replaced by one."""


def check_report_folder(out: Path, flag: str = "--out") -> None:
    """Fail unless `out` is absent, empty, or an earlier report (only `REPORT_FILES`): a report replaces its
    folder whole, so pointing it at a workdir or a run folder would delete them."""
    check_replaceable(out, flag, REPORT_FILES, "a report")


def write_report(report: RunReport, out: Path | None = None) -> Path:
    """Write report.md, report.csv, report.json, report.html and figures/*.png into `out` (default RUN_FOLDER/report),
    replacing an older report there only once the new one is complete (and never a folder that holds anything
    else: `check_report_folder`)."""

    final = Path(out) if out is not None else report.folder / "report"
    check_report_folder(final, "--out" if out is not None else "report folder")
    with atomic_dir(final, overwrite=True) as tmp:
        (tmp / "report.md").write_text(report.markdown())
        (tmp / "report.csv").write_text(report.csv)
        (tmp / "report.json").write_text(report.json())
        (tmp / "report.html").write_text(render_html(report))
        if report.figures:
            (tmp / "figures").mkdir()
            for name, png in report.figures.items():
                (tmp / "figures" / name).write_bytes(png)
    return final
