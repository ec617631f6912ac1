"""`loralab gsm ...`: build the GSM-Symbolic datasets, evaluate a model on one file. The easy-to-hard
experiment is a spec like any other: `loralab run experiments/gsm/default.yaml`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import console, parse_options, positive
from loralab.errors import LoralabError
from loralab.experts.config import SEED_LIMIT

gsm_app = typer.Typer(
    no_args_is_help=True,
    help="Easy-to-hard math on GSM-Symbolic (paper Section 4.2).\n\n"
    "Example: loralab gsm eval --data gsm-data/cot/p2.test.jsonl --prompt tir\n\n"
    "The experiment itself: loralab run experiments/gsm/default.yaml",
)

Templates = Annotated[
    str, typer.Option(help="'own' (the project's 10 families) or a folder with symbolic/ p1/ p2/ templates")
]


@gsm_app.command("data")
def data_cmd(
    templates: Templates = "own",
    out: Annotated[Path, typer.Option(help="output folder: OUT/cot and OUT/code are written")] = Path(
        "gsm-data"
    ),
    seed: Annotated[
        int, typer.Option(min=0, max=SEED_LIMIT - 1, help="seed of the instance draws (0 to 2**32-1)")
    ] = 0,
    graph: Annotated[
        str, typer.Option(help="code format: 'level' (functions up to the question's level) or 'whole'")
    ] = "level",
    skip_inconsistent: Annotated[
        bool, typer.Option(help="leave out templates whose worked solution disagrees with #answer")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="replace existing folders")] = False,
) -> None:
    """Build the symbolic / P1 / P2 datasets (40 train / 5 dev / 5 test per template for symbolic and P1,
    2 P2 questions per template) in both fine-tuning formats: natural-language CoT (OUT/cot) and reusable
    Python code (OUT/code). See src/loralab/gsm/README.md.

    Example: loralab gsm data --templates ../shared/data/gsm-symbolic/templates --out gsm-released
    """
    from loralab.gsm.datasets import build_gsm

    if not templates.strip():
        raise LoralabError("--templates '': name a folder of templates, or own")
    root = None if templates == "own" else Path(templates)
    if root is not None and not root.is_dir():
        raise LoralabError(f"--templates {templates}: not a folder")
    if graph not in ("level", "whole"):
        raise LoralabError(f"--graph {graph}: choose level or whole")
    check_output(out, "--out", inputs=[root] if root is not None else [])
    for solution in ("cot", "code"):
        folder = build_gsm(
            out / solution,
            root,
            seed,
            solution,
            graph,
            skip_inconsistent=skip_inconsistent,
            overwrite=overwrite,
        )
        files = sorted(p.name for p in folder.glob("*.jsonl"))
        console.print(f"wrote {folder}: {', '.join(files)}")


@gsm_app.command("eval")
def eval_cmd(
    data: Annotated[
        Path, typer.Option(help="a GSM JSONL file (prompt, gold, steps), e.g. DATA/cot/p2.test.jsonl")
    ],
    base: Annotated[str, typer.Option(help="built-in base, imported base or HF model folder")] = "default",
    expert: Annotated[list[Path] | None, typer.Option(help="an expert folder (repeat for several)")] = None,
    method: Annotated[
        str, typer.Option(help="combination method for the experts (loralab ls methods)")
    ] = "uniform",
    opt: Annotated[list[str] | None, typer.Option(help="a method option key=value (repeatable)")] = None,
    prompt: Annotated[str, typer.Option(help="cot, gsm8k-8shot or tir")] = "cot",
    db: Annotated[Path, typer.Option(help="results database")] = Path("results.sqlite"),
    run: Annotated[str, typer.Option(help="run name stored with the cell")] = "gsm-eval",
    max_new_tokens: Annotated[int, typer.Option(help="new tokens per generation (per TIR round)")] = 256,
    max_rounds: Annotated[int, typer.Option(help="TIR: code blocks run per answer, at most")] = 2,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N questions")] = None,
    batch_size: Annotated[int, typer.Option(help="questions generated together")] = 32,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:N or mps (default: cuda if present)")
    ] = None,
) -> None:
    """Score a model (the base, or experts combined by a method) on a GSM file with a prompt style; store the
    cell and every example with its error analysis in the results database, and print the summary.
    Outputs without a number score "no answer"; model code (tir) runs only in the sandbox.

    Example: loralab gsm eval --data gsm-data/cot/p2.test.jsonl --expert lib/sym --expert lib/p1 --method arrow
    """
    from loralab.evaluation.generate import MAX_NEW_TOKENS_LIMIT
    from loralab.experiments.cell import evaluate_cell, store_one
    from loralab.gsm.analysis import ERROR_TYPES, SOLUTION_TYPES, tally
    from loralab.gsm.evaluate import DecodeConfig

    positive("--max-new-tokens", max_new_tokens, MAX_NEW_TOKENS_LIMIT)
    positive("--max-rounds", max_rounds)
    positive("--batch-size", batch_size)
    if limit is not None:
        positive("--limit", limit)
    check_output(db, "--db", file=True)
    decode = DecodeConfig(max_new_tokens=max_new_tokens, max_rounds=max_rounds)
    start = time.time()
    record, rows, result = evaluate_cell(
        base,
        data,
        run,
        list(expert or []),
        method,
        parse_options(opt or []),
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        device=device,
        evaluator="gsm",
        prompt=prompt,
        decode=decode.model_dump(),
        limit=limit,
    )
    cell_id = store_one(db, record, rows)
    label = record["method"]
    low, high = result.ci
    console.print(
        f"{label} on {data} ({prompt}): {result.correct}/{result.n} = {result.accuracy:.3f} "
        f"[{low:.3f}, {high:.3f}], {result.count('no answer')} without an answer "
        f"({time.time() - start:.0f} s); stored as cell {cell_id} in {db}"
    )
    errors = tally(result.analyses)
    for s in SOLUTION_TYPES:
        counts = ", ".join(f"{e}: {errors[s][e]}" for e in ERROR_TYPES)
        console.print(f"  {s} solutions: {sum(errors[s].values())} ({counts})")
