"""`loralab combine` and `loralab eval`: combine experts into one artifact; evaluate a cell."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import RESULT_DROP, Workdir, console, expand_experts, parse_options, positive
from loralab.errors import LoralabError
from loralab.terminal import plain, print_table


def combine_cmd(
    method: Annotated[str, typer.Option(help="combination method (loralab ls methods)")],
    expert: Annotated[
        list[Path], typer.Option("--expert", "--experts", help="expert or library folder; repeatable")
    ],
    out: Annotated[Path, typer.Option(help="output folder")],
    opt: Annotated[
        list[str] | None, typer.Option(help="method option key=value (lists: a,b or [a,b]); repeatable")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="base preset or folder (default: the experts' own; checks fit; stored in recipes)"),
    ] = None,
    check_finite: Annotated[bool, typer.Option(help="refuse adapters holding NaN or Inf")] = True,
    overwrite: bool = False,
) -> None:
    """Combine experts into one artifact: a PEFT adapter folder for merges and learned methods (loads with
    peft.PeftModel.from_pretrained), a recipe folder with the experts and their base for routers
    (loralab.combination.load_combined).

    Example: loralab combine --method ties --expert lib/A-B --expert lib/B-C --opt density=0.5 --out merged
    """
    from loralab.combination import export_adapter, get_method, merge, save_combined
    from loralab.combination.registry import coerce_options
    from loralab.experts.library import base_of, load_expert

    spec = get_method(method)
    options = coerce_options(spec, parse_options(opt or []))  # ranges checked before anything is loaded
    if spec.kind == "baseline":
        raise LoralabError(f"--method {method}: a comparison row, nothing to write (use loralab eval)")
    experts = expand_experts(expert)
    check_output(out, "--out", inputs=experts, new=not overwrite)
    loaded = [load_expert(e, check_finite=check_finite) for e in experts]
    if spec.kind == "router":
        recipe_base = base_of(loaded, base, "to record the recipe's base")
        path = save_combined(method, experts, out, overwrite, base=recipe_base, **options)
        console.print(
            plain(f"wrote routed combination {path} ({len(experts)} experts, {method}, base {recipe_base})")
        )
        return
    model = tokenizer = None
    if base is not None or spec.kind == "learned":
        from loralab.models.load import load_base

        model, tokenizer = load_base(base_of(loaded, base, f"by the learned method {method}"))
    merged = merge(loaded, method, model=model, tokenizer=tokenizer, **options)
    path = export_adapter(merged, loaded, out, overwrite=overwrite)
    energy = merged.energy
    kept = f"; retained energy min {min(energy.values()):.4f}" if energy else ""
    console.print(plain(f"wrote PEFT adapter {path} ({method}, {len(merged.modules)} modules{kept})"))


def eval_cmd(
    data: Annotated[
        Path, typer.Option(help="JSONL file with prompt, gold and format (cot or direct; none: direct)")
    ],
    base: Annotated[
        str | None,
        typer.Option(help="base preset, imported base or model folder (default: the one the experts record)"),
    ] = None,
    expert: Annotated[list[Path] | None, typer.Option(help="expert folder; repeatable")] = None,
    method: Annotated[str, typer.Option(help="combination method (loralab ls)")] = "uniform",
    opt: Annotated[
        list[str] | None, typer.Option(help="method option key=value (lists: a,b or [a,b]); repeatable")
    ] = None,
    library: Annotated[str | None, typer.Option(help="label of the expert set in the table")] = None,
    max_new_tokens: int = 128,
    batch_size: int = 64,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N or mps (default: cuda if present)")
    ] = None,
    check_finite: Annotated[bool, typer.Option(help="refuse adapters holding NaN or Inf")] = True,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Evaluate the base, one expert, or experts combined by a method; store the cell in WORKDIR/results.sqlite.

    Example: loralab eval --data DS/ac_cot.test.jsonl --expert lib/A-B --expert lib/B-C --method arrow
    """
    from loralab.combination import get_method
    from loralab.combination.registry import coerce_options
    from loralab.evaluation.generate import MAX_NEW_TOKENS_LIMIT
    from loralab.experiments.cell import run_cell
    from loralab.experiments.store import cells, connect
    from loralab.experts.library import base_of, load_expert
    from loralab.report.table import rich_table
    from loralab.worlds.jsonl import read_jsonl

    spec = get_method(method)
    options = parse_options(opt or [])
    experts = expand_experts(expert or [])
    if experts:
        options = coerce_options(spec, options)  # ranges checked before anything is loaded
        if method == "base":
            raise LoralabError("--method base: evaluates the base alone; give no --expert")
    elif method not in ("uniform", "base") or options:  # without experts nothing is combined
        given = f"--method {method}" if method != "uniform" else f"--opt {(opt or [''])[0]}"
        raise LoralabError(
            f"{given}: combines experts, and no --expert is given (without one, eval scores the base)"
        )
    positive("--max-new-tokens", max_new_tokens, MAX_NEW_TOKENS_LIMIT)
    positive("--batch-size", batch_size)
    check_output(workdir, "--workdir")
    for i, row in enumerate(read_jsonl(data, required=("prompt", "gold")), 1):
        if row.get("format", "direct") not in ("cot", "direct"):
            named = f" (id {row['id']})" if "id" in row else ""
            raise LoralabError(f"{data}: example {i}{named}: format {row['format']!r}: choose cot or direct")
    for e in experts:
        load_expert(e, check_finite=check_finite)
    chosen = base_of(experts, base, "to know which model to evaluate")
    db = workdir / "results.sqlite"
    run = time.strftime("eval-%Y%m%dT%H%M%S")
    cell_id, _ = run_cell(
        chosen,
        data,
        db,
        run,
        experts,
        method,
        options,
        library,
        max_new_tokens,
        batch_size,
        device,
        check_finite=check_finite,
    )
    con = connect(db)
    print_table(console, rich_table([c for c in cells(con, run) if c["id"] == cell_id]), drop=RESULT_DROP)
    con.close()
    console.print(plain(f"stored as cell {cell_id} of {db}"))
