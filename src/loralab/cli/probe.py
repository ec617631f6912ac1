"""`loralab probe ...`: what a base model knows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import Base, console
from loralab.terminal import print_table

probe_app = typer.Typer(
    no_args_is_help=True,
    help="Probe what a base model knows.\n\nExample: loralab probe familiarity --base default",
)


@probe_app.command("familiarity")
def probe_familiarity(
    base: Base = "default",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="also write the result, every question and answer, here")
    ] = None,
    refresh: Annotated[bool, typer.Option(help="measure again instead of reading the cached result")] = False,
) -> None:
    """How familiar a base is with each entity pool (real and fake people and cities): mean log-probability
    per token of the names at the start of a document, and accuracy on true public facts (and, for a built-in
    base, on its own corpus facts). Measured once per base and cached beside it.

    Example: loralab probe familiarity --base smollm2 --json familiarity.json
    """
    from rich.table import Table

    from loralab.artifacts import write_json
    from loralab.evaluation.score import wilson
    from loralab.probes.familiarity import cached_probe, rows

    if json_path is not None:
        check_output(json_path, "--json", file=True, suffix=".json")
    result = cached_probe(base, refresh=refresh)
    table = Table(title=f"familiarity of {result['base']}")
    table.add_column("pool")
    for col in ("names", "tokens/name", "log p/token", "public facts", "n", "corpus facts", "n"):
        table.add_column(col, justify="right")
    table.caption = "facts: accuracy [95% Wilson interval]; log p/token: names opening a document"

    def rate(correct: int, n: int) -> str:
        if n == 0:
            return "-"
        lo, hi = wilson(correct, n)
        return f"{correct / n:.2f} [{lo:.2f}, {hi:.2f}]"

    for row in rows(result):
        table.add_row(
            row["pool"],
            str(row["names"]),
            f"{row['tokens_per_name']:.2f}",
            f"{row['logprob_per_token']:.2f}",
            rate(row["public_correct"], row["public_n"]),
            str(row["public_n"]),
            rate(row["corpus_correct"], row["corpus_n"]),
            str(row["corpus_n"]),
        )
    print_table(console, table, drop=("corpus facts", "tokens/name", "names"))
    if json_path is not None:
        write_json(json_path, result)
        console.print(f"wrote {json_path}")
