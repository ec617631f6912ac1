"""`loralab theory`: the Theorem 2 lab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import Workdir, console
from loralab.errors import LoralabError
from loralab.terminal import print_table


def theory_cmd(
    d: Annotated[int, typer.Option(help="embedding width (the paper wants d >> |X||R|)")] = 256,
    m: Annotated[int, typer.Option(help="MLP width of the measured model")] = 4096,
    entities: Annotated[int, typer.Option(help="entities |X| per world (at least 3)")] = 12,
    relations: Annotated[int, typer.Option(help="relations |R| per world (at least 2)")] = 3,
    seeds: Annotated[int, typer.Option(help="random worlds, seeds 0..N-1")] = 20,
    m_max: Annotated[int, typer.Option(help="the m sweep runs over powers of two from 2^8 to this")] = 2**16,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="also write the numbers here as JSON")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="figure PNG (default WORKDIR/theory/theory.png)")] = None,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Theorem 2 as a runnable lab: edit facts with minimum-norm LoRAs in the paper's one-layer model, combine
    them (sum, CAT, linear, Uniform, Arrow, a larger library; an oracle, a bridge, CoT) and compare what is
    measured at width m with the kernel's m -> infinity prediction. Options and experiments:
    src/loralab/theory/README.md.

    Example: loralab theory --seeds 20 --json loralab-work/theory/theory.json
    """
    from loralab.progress import progress
    from loralab.theory.config import TheoryConfig
    from loralab.theory.figure import save_figure
    from loralab.theory.lab import run_lab
    from loralab.theory.report import rich_table, write_json

    cfg = TheoryConfig(d=d, m=m, entities=entities, relations=relations, seeds=seeds, m_max=m_max)
    figure = out or workdir / "theory" / "theory.png"
    check_output(figure, "--out" if out else "--workdir", file=True, suffix=".png")
    if json_path is not None:
        check_output(json_path, "--json", file=True, suffix=".json")
    with progress() as bar:
        task = bar.add_task(f"worlds (m sweep 2^8..{cfg.sweep[-1]})", total=seeds)
        result = run_lab(cfg, on_world=lambda _: bar.update(task, advance=1))
    if not any(p.n for p in result.sweep):  # a world this small can lack a chain that really edits
        raise LoralabError(
            f"--entities {entities} --relations {relations} --seeds {seeds}: no sampled world holds a chain "
            "r1(x) := y, r2(y) := z that changes the two-hop answer; give more entities, relations or seeds"
        )
    print_table(console, rich_table(result), drop=("pred. acc.", "95% CI", "paper"))
    console.print(f"wrote {save_figure(result, out or workdir / 'theory' / 'theory.png')}")
    if json_path is not None:
        console.print(f"wrote {write_json(result, json_path)}")
