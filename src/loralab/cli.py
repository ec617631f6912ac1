"""The `loralab` console script: one thin subcommand per pipeline stage."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from loralab.errors import LoralabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="loralab: a laboratory for recycling LoRAs.",
)
data_app = typer.Typer(no_args_is_help=True, help="Build datasets.")
base_app = typer.Typer(no_args_is_help=True, help="Build the built-in base models.")
library_app = typer.Typer(no_args_is_help=True, help="Inspect expert libraries.")
app.add_typer(data_app, name="data")
app.add_typer(base_app, name="base")
app.add_typer(library_app, name="library")
# a pipe or log file gets wide tables instead of rich's default of 80 columns
console = Console() if sys.stdout.isatty() else Console(width=160)

Workdir = Annotated[Path, typer.Option(help="where artifacts are written")]
Base = Annotated[str, typer.Option(help="a built-in preset (default, test) or a local HF model folder")]


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values parsed as int, float, bool or left as strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise LoralabError(f"--opt {pair}: expected key=value")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key] = value
    return out


@app.command("ls")
def ls_registries() -> None:
    """List the registries: combination methods, dataset builders, base presets.

    Example: loralab ls
    """
    from loralab.combine import METHODS, method_options
    from loralab.models.tiny import PRESETS
    from loralab.worlds.twohop import TASKS, VARIANTS

    console.print("[bold]combination methods[/bold]")
    for spec in METHODS.values():
        console.print(
            f"  {spec.name:10} {spec.kind:7} {spec.description}\n"
            f"  {'':18} {spec.formula}\n  {'':18} options: {method_options(spec)}; {spec.paper}"
        )
    console.print(
        f"[bold]datasets[/bold]\n  twohop     variants {', '.join(VARIANTS)}; tasks {', '.join(TASKS)}"
    )
    console.print(f"[bold]base presets[/bold]\n  {', '.join(PRESETS)}")


@data_app.command("twohop")
def data_twohop(
    variant: Annotated[str, typer.Option(help="FF, HH or RR")] = "RR",
    triplets: Annotated[int, typer.Option(help="number of (A, B, C) triplets")] = 100,
    test_templates: Annotated[int, typer.Option(help="templates held out for test")] = 3,
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/twohop-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write the two-hop dataset (tasks ab, bc, ac, ac_cot; train/test split by template) as JSONL.

    Example: loralab data twohop --variant RR --triplets 100 --seed 0
    """
    from loralab.worlds.twohop import VARIANTS, build_twohop

    if variant not in VARIANTS:
        raise LoralabError(f"--variant {variant}: choose one of {', '.join(VARIANTS)}")
    if not 1 <= test_templates < 12:
        raise LoralabError(f"--test-templates {test_templates}: must be between 1 and 11")
    if triplets < 1:
        raise LoralabError(f"--triplets {triplets}: must be positive")
    folder = out or workdir / "data" / f"twohop-{variant}-n{triplets}-s{seed}"
    try:
        path = build_twohop(folder, variant, triplets, test_templates, seed, overwrite)
    except ValueError as exc:
        raise LoralabError(f"--triplets {triplets}: {exc}") from exc
    console.print(f"wrote {path}")


@base_app.command("build")
def base_build(
    preset: Annotated[str, typer.Option(help="which built-in base: default or test")] = "default",
    overwrite: Annotated[bool, typer.Option(help="rebuild even if cached")] = False,
) -> None:
    """Pretrain a built-in base into $LORALAB_CACHE (default ~/.cache/loralab); skipped if already built.

    Example: loralab base build --preset default
    """
    from loralab.models.tiny import build_base, preset_dir

    path = preset_dir(preset)
    if (path / "meta.json").is_file() and not overwrite:
        console.print(f"already built: {path}")
        return
    console.print(f"built {build_base(preset)}")


@app.command("train")
def train(
    data: Annotated[list[Path], typer.Option(help="JSONL file(s) with prompt and answer; repeatable")],
    out: Annotated[Path | None, typer.Option(help="expert folder (default WORKDIR/library/NAME)")] = None,
    name: Annotated[str | None, typer.Option(help="expert name, used when --out is not given")] = None,
    base: Base = "default",
    r: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    alpha: Annotated[int, typer.Option(help="LoRA alpha")] = 32,
    dropout: Annotated[float, typer.Option(help="LoRA dropout")] = 0.05,
    targets: Annotated[str, typer.Option(help="mlp, attention or both")] = "mlp",
    lr: Annotated[float | None, typer.Option(help="default 3e-3 on a built-in base, else 1e-4")] = None,
    epochs: Annotated[int | None, typer.Option(help="default 10 on a built-in base, else 5")] = None,
    batch_size: int = 16,
    seed: int = 0,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Train one LoRA expert (PEFT format + meta.json); its library's index.json is refreshed.

    Example: loralab train --data loralab-work/data/twohop-RR-n100-s0/ab.train.jsonl --out lib/A-B
    """
    from pydantic import ValidationError

    from loralab.experts.config import ExpertConfig
    from loralab.experts.library import write_index
    from loralab.experts.train import train_expert

    try:
        cfg = ExpertConfig(
            r=r,
            alpha=alpha,
            dropout=dropout,
            targets=targets,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise LoralabError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from exc
    if out is None and not name:
        raise LoralabError("--out or --name: say where the expert goes")
    path = train_expert(base, data, out or workdir / "library" / str(name), cfg, name, overwrite=overwrite)
    write_index(path.parent)
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
        table.add_row(
            e["name"], str(e["r"]), str(e["alpha"]), ",".join(e["targets"]), str(e["examples"]), loss
        )
    console.print(table)


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Option(help="JSONL file with prompt, gold and format (cot or direct)")],
    base: Base = "default",
    expert: Annotated[list[Path] | None, typer.Option(help="expert folder; repeatable")] = None,
    method: Annotated[str, typer.Option(help="combination method (loralab ls)")] = "uniform",
    opt: Annotated[list[str] | None, typer.Option(help="method option key=value; repeatable")] = None,
    library: Annotated[str | None, typer.Option(help="label of the expert set in the table")] = None,
    max_new_tokens: int = 128,
    batch_size: int = 64,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if present)")] = None,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Evaluate the base, one expert, or experts combined by a method; store the cell in WORKDIR/results.sqlite.

    Example: loralab eval --data DS/ac_cot.test.jsonl --expert lib/A-B --expert lib/B-C --method arrow
    """
    from loralab.experiments.cell import run_cell
    from loralab.experiments.store import cells, connect
    from loralab.report.table import rich_table

    experts = expert or []
    db = workdir / "results.sqlite"
    run = time.strftime("eval-%Y%m%dT%H%M%S")
    cell_id, _ = run_cell(
        base,
        data,
        db,
        run,
        experts,
        method,
        parse_options(opt or []),
        library,
        max_new_tokens,
        batch_size,
        device,
    )
    con = connect(db)
    console.print(rich_table([c for c in cells(con, run) if c["id"] == cell_id]))
    con.close()
    console.print(f"stored as cell {cell_id} of {db}")


@app.command("quickstart")
def quickstart_cmd(
    workdir: Workdir = Path("loralab-work"),
    base: Base = "default",
    variant: Annotated[str, typer.Option(help="FF, HH or RR")] = "RR",
    triplets: int = 100,
    seed: int = 0,
) -> None:
    """Build the default base if missing, train A->B, B->C and oracle A->C experts, evaluate them alone and
    combined (Uniform, Arrow) on held-out two-hop questions with CoT, and print the table.

    Example: loralab quickstart
    """
    from loralab.experiments.quickstart import quickstart

    quickstart(workdir, base, variant, triplets, seed, console=console)


@app.command("report")
def report(
    db: Path,
    fmt: Annotated[str, typer.Option("--format", help="table, markdown or csv")] = "table",
    run: Annotated[str | None, typer.Option(help="only this run")] = None,
) -> None:
    """Print the result table of a results database.

    Example: loralab report loralab-work/results.sqlite --format markdown
    """
    from loralab.experiments.store import cells, connect
    from loralab.report.table import markdown, rich_table, to_csv

    if fmt not in ("table", "markdown", "csv"):
        raise LoralabError(f"--format {fmt}: choose table, markdown or csv")
    con = connect(db, create=False)
    rows = cells(con, run)
    con.close()
    if not rows:
        raise LoralabError(f"{db}: no results" + (f" for run {run}" if run else ""))
    if fmt == "table":
        console.print(rich_table(rows))
    else:
        sys.stdout.write(markdown(rows) if fmt == "markdown" else to_csv(rows))


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit status 2."""
    try:
        app()
    except LoralabError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
