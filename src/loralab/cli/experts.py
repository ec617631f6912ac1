"""`loralab train` and `loralab library ...`: train one expert, inspect a library."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import Base, Workdir, console, lora_options
from loralab.errors import LoralabError
from loralab.experts.config import ExpertConfig
from loralab.terminal import plain, print_table

library_app = typer.Typer(
    no_args_is_help=True, help="Inspect expert libraries.\n\nExample: loralab library ls loralab-work/library"
)


@lora_options
def train_cmd(
    data: Annotated[list[Path], typer.Option(help="JSONL file(s) with prompt and answer; repeatable")],
    out: Annotated[Path | None, typer.Option(help="expert folder (default WORKDIR/library/NAME)")] = None,
    name: Annotated[str | None, typer.Option(help="expert name, used when --out is not given")] = None,
    base: Base = "default",
    *,
    lora: ExpertConfig,  # one flag per field (options.lora_options)
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Train one LoRA expert (PEFT format + meta.json); its library's index.json is refreshed. The LoRA flags
    (--r to --seed) are the fields of `ExpertConfig`, the `lora:` keys of an expert in a spec.

    Example: loralab train --data loralab-work/data/twohop-RR-n100-s0/ab.train.jsonl --out lib/A-B
    """
    from loralab.experts.library import ADAPTER_CONFIG, INDEX, write_index
    from loralab.experts.train import train_expert
    from loralab.worlds.jsonl import read_jsonl

    if out is None and not name:
        raise LoralabError("--out or --name: say where the expert goes")
    if out is None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", str(name)):
        raise LoralabError(
            f"--name {name}: a plain name (letters, digits, . _ -), the expert's folder in WORKDIR/library"
        )
    folder = out or workdir / "library" / str(name)
    check_output(folder, "--out" if out else "--workdir", inputs=data, new=not overwrite)
    for file in data:
        read_jsonl(file)
    path = train_expert(base, data, folder, lora, name, overwrite=overwrite)
    # a library's index: the workdir's library, or an --out whose parent holds experts only (or an index);
    # never a file dropped into any other folder (the current one, a dataset's)
    library = path.parent
    if out is None or all(p.name == INDEX or (p / ADAPTER_CONFIG).is_file() for p in library.iterdir()):
        write_index(library)
    console.print(f"wrote {path}")


@library_app.command("ls")
def library_ls(path: Path) -> None:
    """List a library's experts.

    Example: loralab library ls loralab-work/library/twohop-RR-n100-s0-default
    """
    from rich.table import Table

    from loralab.experts.library import list_library

    table = Table(title=str(path))
    for col in ("name", "r", "alpha", "targets", "examples", "final loss"):
        table.add_column(col)
    for e in list_library(path):
        loss = f"{e['final_loss']:.4f}" if e.get("final_loss") is not None else "-"
        cells = (e["name"], str(e["r"]), str(e["alpha"]), ",".join(e["targets"]), str(e["examples"]), loss)
        table.add_row(*(plain(c) for c in cells))
    print_table(console, table, drop=("final loss", "examples", "alpha"))
