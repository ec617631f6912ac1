"""`loralab ls`: print the registries."""

from __future__ import annotations

from typing import Annotated

import typer

from loralab.cli.options import OPTION_SYNTAX, console
from loralab.errors import LoralabError, did_you_mean
from loralab.terminal import plain, print_table


def ls_cmd(
    what: Annotated[
        str,
        typer.Argument(help="methods, datasets, setups, bases, scales or all (presets: bases and scales)"),
    ] = "all",
) -> None:
    """List the registries: combination methods (kind, formula, options, paper), datasets, setups, bases (base
    presets and importable bases) and scales (what `loralab run SPEC --scale NAME` resizes).

    Example: loralab ls methods
    """
    from rich.table import Table

    from loralab.combination import METHODS, options
    from loralab.experiments.datasets import DATASETS
    from loralab.worlds.setups import SETUPS, mixture_notation

    choices = ("methods", "datasets", "setups", "bases", "scales", "presets", "all")
    if what not in choices:
        raise LoralabError(
            f"ls {what}: choose methods, datasets, setups, bases, scales or all{did_you_mean(what, choices)}"
        )
    if what in ("methods", "all"):
        table = Table(title="combination methods", show_lines=True, caption=plain(OPTION_SYNTAX))
        for col in ("name", "kind", "space", "formula", "options (type, range = default)", "paper"):
            table.add_column(col, overflow="fold")
        for spec in METHODS.values():
            opts = "\n".join(f"{o.name}: {o.type_name} = {o.default!r}" for o in options(spec)) or "-"
            cells = (spec.name, spec.kind, spec.space, spec.formula, opts, spec.paper)
            table.add_row(*(plain(c) for c in cells))
        print_table(console, table, drop=("paper", "space", "kind"))
    if what in ("datasets", "all"):
        kinds = [f"  {k.name:<10} {k.listing()}" for k in DATASETS.values()]  # a spec's datasets.NAME.kind
        console.print(
            "\n".join(
                [
                    "[bold]datasets[/bold] (loralab data ...; src/loralab/worlds/README.md)",
                    *kinds,
                    "  bridge     B_F (FF), B_R (RR): first hop + second hop + CoT composition, disjoint entities",
                    "  validate   checks a dataset folder (splits, leaks, answers, entities, the base's corpus)",
                ]
            ),
        )
    if what in ("setups", "all"):
        table = Table(title="setups (loralab data setup NAME)", show_lines=True)
        for col in ("name", "experts: training mixtures", "evaluated on", "paper"):
            table.add_column(col, overflow="fold")
        for setup in SETUPS.values():
            mixtures = "\n".join(f"{e}: {mixture_notation(m)}" for e, m in setup.experts.items())
            table.add_row(*(plain(c) for c in (setup.name, mixtures, setup.evaluation, setup.paper)))
        print_table(console, table, drop=("paper",))
    if what in ("bases", "presets", "all"):
        _bases()
    if what in ("scales", "presets", "all"):
        _scales()


def _bases() -> None:
    """The base presets (built-in bases) and the importable bases: what `--base NAME` and a spec's `bases:`
    accept besides a model folder."""
    from loralab.models.importer import IMPORTS
    from loralab.models.tiny import BASE_PRESETS, BUILD_TIME

    lines = ["[bold]base presets[/bold] (built-in bases: loralab base build NAME, or built on first use)"]
    for name, p in BASE_PRESETS.items():
        size = f"Qwen2, {p.layers} layers, hidden {p.hidden_size}, {p.steps} pretraining steps"
        lines.append(f"  {name:<10} {size}; building takes {BUILD_TIME.get(name, 'minutes')}")
    lines.append("[bold]imported bases[/bold] (loralab base import NAME)")
    lines += [f"  {name:<10} {spec.description}" for name, spec in IMPORTS.items()]
    console.print("\n".join(lines), highlight=False)


def _scales() -> None:
    """The scales of `loralab run SPEC --scale NAME`: the sizes each sets wherever a spec has them."""
    from loralab.experiments.spec import SCALES

    lines = ["[bold]scales[/bold] (loralab run SPEC --scale NAME: resize a spec, not what it compares)"]
    for name, scale in SCALES.items():
        sets = ", ".join(f"{k}={v}" for k, v in scale.model_dump(exclude_none=True).items())
        lines.append(f"  {name:<10} {sets}")
    console.print("\n".join(lines), highlight=False)
