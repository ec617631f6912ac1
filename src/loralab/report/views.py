"""The report tables a spec declares (`tables:`; the GSM experiment's Tables 12, 2, 3, ...).

Each `TableSpec` picks the run's groups (`loralab.report.layouts.pool`) of some libraries, promptings and
evaluated files, and lays them out with `VIEW`: one row per method and library (and targets, where they
vary), one column per evaluation, ``PROMPTING on LEVEL`` (the evaluated file's first name part). A table
with `errors` is followed by the error analysis of the same groups, drawn from the stored examples' typed
analysis columns (`loralab.experiments.store.analysis_counts`, pooled over seeds like the counts): the share
of each solution type and each error type (`loralab.gsm.analysis`), and how many outputs held no number.
"""

from __future__ import annotations

from collections.abc import Sequence

from loralab.experiments.schema import TableSpec
from loralab.gsm.analysis import ERROR_TYPES, SOLUTION_TYPES
from loralab.report.layouts import Group, Layout, ReportTable, build_table, library_label, method_label


def evaluation_label(g: Group) -> str:
    """``cot on p2``: the prompting and the evaluated file's level (its name up to the first dot)."""
    ev = g.record.get("evaluation", {})
    return f"{ev.get('prompting')} on {str(ev.get('file', '')).split('.')[0]}"


VIEW = Layout(
    "view",
    "",
    "Rows: method and library; columns: the prompting and the evaluated level.",
    (("Method", method_label), ("Library", library_label)),
    ("Evaluation", evaluation_label),
    lambda g: f"{method_label(g)} {library_label(g)}",
    paper=False,
)


def _members(table: TableSpec, groups: Sequence[Group]) -> list[Group]:
    def keep(g: Group) -> bool:
        ev = g.record.get("evaluation", {})
        return (
            (table.libraries is None or g.record.get("library") in table.libraries)
            and (table.prompting is None or ev.get("prompting") in table.prompting)
            and (table.files is None or ev.get("file") in table.files)
        )

    return [g for g in groups if "control" not in g.record and keep(g)]


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def error_table(title: str, groups: Sequence[Group]) -> ReportTable:
    """The paper's Table 14 turned sideways: per group, the share of each solution type and error type of
    its outputs, and how many held no number (a rule-based analysis, `loralab.gsm.analysis.analyze`)."""
    header = ["Method", "Library", "Evaluation", "n", "accuracy"]
    header += [f"{s} solutions" for s in SOLUTION_TYPES] + [f"error: {e}" for e in ERROR_TYPES]
    header.append("no answer")
    body = []
    for g in groups:
        if not g.done:
            continue
        counts, n = g.analysis, g.n
        solutions = [sum(counts.get(f"type:{s}/{e}", 0) for e in ERROR_TYPES) for s in SOLUTION_TYPES]
        errors = [sum(counts.get(f"type:{s}/{e}", 0) for s in SOLUTION_TYPES) for e in ERROR_TYPES]
        body.append(
            [method_label(g), library_label(g), evaluation_label(g), str(n), f"{100 * (g.accuracy or 0):.1f}"]
            + [_pct(k, n) for k in solutions + errors]
            + [str(counts.get("status:no answer", 0))]
        )
    caption = (
        "Shares of the outputs (%), pooled over seeds; an error type is the rule-based analysis of a wrong or "
        "unanswered output against the template's computation steps (src/loralab/gsm/README.md)."
    )
    return ReportTable(f"{title}: error analysis", caption, header, body, list(groups), 3)


def spec_tables(tables: Sequence[TableSpec], groups: Sequence[Group]) -> list[ReportTable]:
    """Every declared table, each followed by its error analysis when it asks for one."""
    out = []
    for table in tables:
        members = _members(table, groups)
        view = build_table(VIEW, members)
        view.title = f"{table.name}: {table.title}"
        out.append(view)
        if table.errors:
            out.append(error_table(table.name, members))
    return out
