"""The `loralab diagnose` and `loralab audit` commands (registered on the root app by `loralab.cli.main`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from loralab.diagnose import PARTS
from loralab.errors import LoralabError

console = Console() if sys.stdout.isatty() else Console(width=160)


def _pairs(opt: list[str]) -> dict[str, Any]:
    """`key=value` strings; the method's signature converts the values (`coerce_options`)."""
    out: dict[str, Any] = {}
    for pair in opt:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise LoralabError(f"--opt {pair}: expected key=value")
        out[key] = value
    return out


def _parts(parts: str) -> list[str]:
    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    bad = [p for p in chosen if p not in PARTS]
    if bad or not chosen:
        raise LoralabError(f"--parts {parts}: choose from {', '.join(PARTS)} (comma-separated)")
    return chosen


def _out(
    out: Path, overwrite: bool, inputs: list[Path], base: str | None, outputs: tuple[str, ...], what: str
) -> None:
    """Refuse before any work an --out that exists (without --overwrite), that lies inside or holds one of
    the `inputs` or the `base` folder, or (with --overwrite) that holds anything but an earlier `what`'s
    `outputs`: replacing it would delete them."""
    from loralab.artifacts import check_output, check_replaceable

    folders = [Path(base)] if base and Path(base).is_dir() else []
    check_output(out, "--out", [*inputs, *folders], new=not overwrite)
    check_replaceable(out, "--out", outputs, what)


def diagnose_cmd(
    expert: Annotated[list[Path], typer.Option("--expert", help="expert or library folder; repeatable")],
    method: Annotated[str, typer.Option(help="combination method (loralab ls methods)")],
    data: Annotated[
        Path,
        typer.Option(help="probe rows (JSONL: prompt, gold; an `expert` label enables routing accuracy)"),
    ],
    out: Annotated[Path, typer.Option(help="output folder (diagnostics.json, diagnostics.html)")],
    base: Annotated[
        str | None,
        typer.Option(help="base preset or local HF model folder (default: the base the experts record)"),
    ] = None,
    opt: Annotated[list[str] | None, typer.Option(help="method option key=value; repeatable")] = None,
    parts: Annotated[str, typer.Option(help=f"comma-separated: {', '.join(PARTS)}")] = ",".join(PARTS),
    probes: Annotated[int, typer.Option(help="use the first N rows of --data")] = 32,
    density: Annotated[float, typer.Option(help="TIES density for the sign-conflict rate")] = 0.2,
    overwrite: bool = False,
) -> None:
    """Explain a combination: routing traces and accuracy, library geometry, strength curves, leave-one-out
    attribution, whose answers it gives, and a verdict, written as diagnostics.json and diagnostics.html.

    Example: loralab diagnose --expert lib/A-B --expert lib/B-C --method arrow --data DS/ab.test.jsonl --out d
    """
    from loralab.diagnose.audit import library_experts
    from loralab.diagnose.panel import DIAGNOSTICS, OUTPUTS, PAGE, diagnose, write_diagnostics
    from loralab.experts.library import base_of
    from loralab.worlds.jsonl import read_jsonl

    chosen = _parts(parts)
    if method == "base":
        raise LoralabError("--method base: evaluates the base alone, there is no combination to diagnose")
    if probes < 1:
        raise LoralabError(f"--probes {probes}: must be positive")
    if not 0 < density <= 1:
        raise LoralabError(f"--density {density}: must be in (0, 1]")
    experts = library_experts(expert)
    _out(out, overwrite, [*expert, data], base, OUTPUTS, "a diagnosis")
    rows = read_jsonl(data, required=("prompt", "gold"))[:probes]
    chosen_base = base_of(experts, base, "to run the combination")
    result = diagnose(
        chosen_base, experts, method, _pairs(opt or []), rows, chosen, density=density, source=str(data)
    )
    for note in result["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    for label in result["verdict"]["labels"] or ["no label applies"]:
        console.print(f"verdict: {label}", highlight=False, markup=False, soft_wrap=True)
    path = write_diagnostics(result, out, overwrite=overwrite)
    console.print(f"wrote {path / DIAGNOSTICS} and {path / PAGE}", highlight=False)


def audit_cmd(
    library: Annotated[list[Path], typer.Argument(help="library folder(s) or expert folders")],
    out: Annotated[Path, typer.Option(help="output folder (audit.json, audit.html, reading.txt)")],
    base: Annotated[
        str | None,
        typer.Option(help="base preset or local HF model folder (default: the base the experts record)"),
    ] = None,
    probe: Annotated[
        Path | None,
        typer.Option(help="JSONL rows {prompt, answer, expert} for adapters loralab did not train"),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(help="merge or router to pair experts with; repeatable (default uniform, arrow)"),
    ] = None,
    per_expert: Annotated[int, typer.Option(help="probes per expert")] = 16,
    overwrite: bool = False,
) -> None:
    """Audit a library: each expert alone (strength curves: accuracy and the gold answer's margin at lambda x
    its delta), the pairwise interference matrix per method, the whole library's routing accuracy, the
    geometry summary, and a one-paragraph reading.

    Example: loralab audit loralab-work/library/my-lib --base default --probe probes.jsonl --out audit
    """
    from loralab.diagnose.audit import OUTPUTS, audit, library_experts, write_audit
    from loralab.experts.library import base_of

    if per_expert < 1:
        raise LoralabError(f"--per-expert {per_expert}: must be positive")
    if probe is not None and not probe.is_file():
        raise LoralabError(f"--probe {probe}: file not found")
    _out(out, overwrite, [*library, *([probe] if probe is not None else [])], base, OUTPUTS, "an audit")
    chosen_base = base_of(library_experts(library), base, "to run the experts")
    result = audit(library, chosen_base, probe, method or ["uniform", "arrow"], per_expert)
    print_audit(result)
    console.print(result["reading"], highlight=False, markup=False, soft_wrap=True)
    path = write_audit(result, out, overwrite=overwrite)
    console.print(
        f"wrote {path / 'audit.json'}, {path / 'audit.html'} and {path / 'reading.txt'}", highlight=False
    )


def predict_cmd(
    runs: Annotated[list[Path], typer.Argument(help="run folders (WORKDIR/runs/NAME.SCALE), any bases")],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="also write the table and every pooled cell here as JSON (replaced)"),
    ] = None,
) -> None:
    """Do the diagnostics predict? Spearman's rho (95% bootstrap interval) between each diagnostic score and
    the measured two-hop accuracy and retention, pooled over the diagnosed cells of several runs (say, one
    per base), so that the scores vary enough to be tested.

    Example: loralab predict loralab-work/runs/controls.default loralab-work/runs/controls-cpu-real
    """
    from loralab.artifacts import check_output, write_json
    from loralab.report.diagnostics import pooled_prediction

    for run in runs:
        if not (run / "plan.json").is_file():
            raise LoralabError(f"{run}: not a run folder (no plan.json; runs live in WORKDIR/runs/NAME)")
    if json_out is not None:  # a .json file is replaced, as `probe familiarity --json` and `theory --json` do
        check_output(json_out, "--json", runs, file=True, suffix=".json")
    table, records = pooled_prediction(runs)
    if not records:
        raise LoralabError(f"{', '.join(map(str, runs))}: no diagnosed cells (run with --diagnostics cheap)")
    if all(v is None for r in records for v in r["measured"].values()):
        raise LoralabError(
            f"{', '.join(map(str, runs))}: no stored results for the diagnosed cells (is results.sqlite there?)"
        )
    console.print(table.markdown(), highlight=False, markup=False, soft_wrap=True)
    if json_out is not None:
        payload = {"title": table.title, "header": table.header, "rows": table.body, "cells": records}
        write_json(json_out, payload)
        console.print(f"wrote {json_out}", highlight=False)


def _cell(v: Any) -> str:
    return "-" if v is None else f"{v:+.2f}" if isinstance(v, float) and v < 0 else f"{v:.2f}"


def print_audit(result: dict[str, Any]) -> None:
    """The audit's tables on the terminal: alone and whole library, interference per method, strength
    curves and margins, whose answers, geometry per pair."""
    from rich.table import Table

    from loralab.diagnose.answers import alone_rows, answer_header, answer_rows

    names = result["experts"]
    table = Table(title="each expert on its own probes")
    for col in ("expert", "probes", "alone", *(f"all, {m}" for m in result["library"])):
        table.add_column(col)
    for n in names:
        whole = [_cell(w["accuracy"].get(n)) for w in result["library"].values()]
        table.add_row(n, str(result["probes"].get(n, 0)), _cell(result["alone"].get(n)), *whole)
    console.print(table)
    for method, inter in result["interference"].items():
        table = Table(title=f"{method}: accuracy the row expert loses beside the column expert")
        for col in ("", *names):
            table.add_column(col)
        for n, row in zip(names, inter["drop"], strict=True):
            table.add_row(n, *(_cell(v) for v in row))
        console.print(table)
    table = Table(title="strength: accuracy on its own probes at lambda x its delta")
    for col in ("expert", *(str(x) for x in result["strength"]["lambdas"])):
        table.add_column(col)
    for c in result["strength"]["curves"]:
        table.add_row(c["expert"], *(_cell(p["accuracy"]) for p in c["points"]))
    console.print(table)
    table = Table(
        title="margin of the gold answer's first token (logits, teacher-forced) at lambda x its delta"
    )
    for col in ("expert", "delta size", *(str(x) for x in result["strength"]["lambdas"])):
        table.add_column(col)
    for c in result["strength"]["curves"]:
        size = c.get("delta_size")
        table.add_row(
            c["expert"],
            "-" if size is None else f"{size:.3f}",
            *(_cell(p.get("margin")) for p in c["points"]),
        )
    console.print(table)
    answers = result.get("answers") or {}
    for method, counts in answers.get("library", {}).items():
        table = Table(title=f"{method}, all experts: whose answers (share of each expert's probes)")
        for col in answer_header(names):
            table.add_column(col)
        for row in answer_rows(counts, names):
            table.add_row(row[0], str(row[1]), *(_cell(v) for v in row[2:]))
        console.print(table)
    alone = answers.get("alone") or {}
    if alone:
        table = Table(title="each expert alone on the others' probes: share answered with its own answers")
        for col in ("expert \\ questions of", *names):
            table.add_column(col)
        for row in alone_rows(alone, names):
            table.add_row(row[0], *(_cell(v) for v in row[1:]))
        console.print(table)
    table = Table(title="geometry (mean over modules)")
    for col in ("pair", "prototype |cos|", "delta cos", "input angle (deg)", "sign conflict"):
        table.add_column(col)
    for p in result["geometry"]["pairs"].values():
        keys = ("prototype_abs_cos", "delta_cos", "input_angle_mean_deg", "sign_conflict")
        table.add_row(" / ".join(p["experts"]), *(_cell(p.get(k)) for k in keys))
    console.print(table)
