"""`loralab data ...`: build and check datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import Workdir, console, positive, preset_alias, renamed
from loralab.errors import LoralabError, did_you_mean
from loralab.experts.config import SEED_LIMIT

data_app = typer.Typer(
    no_args_is_help=True, help="Build datasets.\n\nExample: loralab data twohop --variant FF --triplets 100"
)


@data_app.command("twohop")
def data_twohop(
    variant: Annotated[str, typer.Option(help="FF, HH or RR")] = "RR",
    triplets: Annotated[int, typer.Option(help="number of (A, B, C) triplets")] = 100,
    relations: Annotated[
        str,
        typer.Option(
            help="the chain: spouse_born_in (F1, F2, F12), spouse_study_in (F1, F4, F14) or child_born_in "
            "(F5, F2, F52)"
        ),
    ] = "spouse_born_in",
    templates: Annotated[int, typer.Option(help="templates per relation to use (the first N of 50)")] = 50,
    dev_templates: Annotated[int, typer.Option(help="templates per triplet held out for dev")] = 2,
    test_templates: Annotated[int, typer.Option(help="templates per triplet held out for test")] = 2,
    seed: Annotated[int, typer.Option(min=0, max=SEED_LIMIT - 1, help="the draw (0 to 2**32-1)")] = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/twohop-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write the two-hop dataset (tasks ab, bc, ac, ac_cot; train/dev/test split per triplet by template) as JSONL.

    Example: loralab data twohop --variant RR --triplets 100 --relations child_born_in --seed 0
    """
    from loralab.worlds.templates import TEMPLATES_PER_RELATION
    from loralab.worlds.twohop import CHAINS, DEFAULT_CHAIN, MAX_UNITS, MAX_UNITS_WHY, VARIANTS, build_twohop

    if variant not in VARIANTS:
        raise LoralabError(
            f"--variant {variant}: choose one of {', '.join(VARIANTS)}{did_you_mean(variant, VARIANTS)}"
        )
    if relations not in CHAINS:
        raise LoralabError(
            f"--relations {relations}: choose one of {', '.join(CHAINS)}{did_you_mean(relations, CHAINS)}"
        )
    if not 1 <= templates <= TEMPLATES_PER_RELATION:
        raise LoralabError(f"--templates {templates}: must be between 1 and {TEMPLATES_PER_RELATION}")
    if dev_templates < 0:
        raise LoralabError(f"--dev-templates {dev_templates}: must not be negative")
    if test_templates < 1 or dev_templates + test_templates >= templates:
        raise LoralabError(
            f"--test-templates {test_templates}: must be at least 1 and leave training templates "
            f"(with --dev-templates {dev_templates} of --templates {templates})"
        )
    positive("--triplets", triplets, MAX_UNITS, MAX_UNITS_WHY)
    chain = "" if relations == DEFAULT_CHAIN else f"-{relations}"
    folder = out or workdir / "data" / f"twohop-{variant}{chain}-n{triplets}-s{seed}"
    check_output(folder, "--out" if out else "--workdir", new=not overwrite)
    try:
        path = build_twohop(
            folder,
            variant,
            triplets,
            relations=relations,
            templates=templates,
            dev_templates=dev_templates,
            test_templates=test_templates,
            seed=seed,
            overwrite=overwrite,
        )
    except ValueError as exc:
        raise LoralabError(f"--triplets {triplets}: {exc}") from exc
    console.print(f"wrote {path}")


def _dataset_names(folder: Path) -> set[str]:
    """Every entity name a dataset folder's card lists (people and cities, of all its datasets)."""
    from loralab.worlds.card import read_card

    card = read_card(folder)
    pools = [card.get("entities", {})] + [d["entities"] for d in card.get("datasets", {}).values()]
    return {n for pool in pools for e in pool.values() for n in e["names"]}


@data_app.command("bridge")
def data_bridge(
    variant: Annotated[
        str, typer.Option(help="FF (the fake bridge B_F), RR (the real bridge B_R) or HH")
    ] = "FF",
    triplets: Annotated[int, typer.Option(help="number of bridge (A, B, C) triplets")] = 100,
    relations: Annotated[
        str, typer.Option(help="the chain: spouse_born_in, spouse_study_in or child_born_in")
    ] = "spouse_born_in",
    cot: Annotated[bool, typer.Option(help="the composition with CoT (--no-cot: asked directly)")] = True,
    disjoint_from: Annotated[
        list[Path] | None,
        typer.Option(help="a dataset folder whose people and fake cities the bridge avoids; repeatable"),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_LIMIT - 1, help="the draw (0 to 2**32-1)")] = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/bridge-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write a bridge: first hop + second hop + CoT composition (training split) in bridge.train.jsonl.

    Example: loralab data bridge --variant RR --triplets 100 --disjoint-from loralab-work/data/twohop-FF-n100-s0
    """
    from loralab.worlds.setups import build_bridge
    from loralab.worlds.twohop import CHAINS, DEFAULT_CHAIN, MAX_UNITS, MAX_UNITS_WHY, VARIANTS

    if variant not in VARIANTS:
        raise LoralabError(
            f"--variant {variant}: choose one of {', '.join(VARIANTS)}{did_you_mean(variant, VARIANTS)}"
        )
    if relations not in CHAINS:
        raise LoralabError(
            f"--relations {relations}: choose one of {', '.join(CHAINS)}{did_you_mean(relations, CHAINS)}"
        )
    positive("--triplets", triplets, MAX_UNITS, MAX_UNITS_WHY)
    excluded: set[str] = set()
    for folder in disjoint_from or []:
        try:
            excluded |= _dataset_names(folder)
        except LoralabError as exc:
            raise LoralabError(f"--disjoint-from {exc}") from exc
    chain = "" if relations == DEFAULT_CHAIN else f"-{relations}"
    folder = (
        out or workdir / "data" / f"bridge-{variant}{chain}{'' if cot else '-direct'}-n{triplets}-s{seed}"
    )
    check_output(folder, "--out" if out else "--workdir", inputs=disjoint_from or [], new=not overwrite)
    try:
        path = build_bridge(
            folder,
            variant,
            triplets,
            relations=relations,
            cot=cot,
            seed=seed,
            exclude=excluded,
            disjoint_from=[str(f) for f in disjoint_from or []],
            overwrite=overwrite,
        )
    except ValueError as exc:
        raise LoralabError(f"--triplets {triplets}: {exc}") from exc
    console.print(f"wrote {path}")


@data_app.command("setup")
def data_setup(
    name: Annotated[
        str,
        typer.Argument(
            help="a setup of `loralab ls setups` (setup-0 ... setup-8, familiarity-FF/HH/RR), or all"
        ),
    ],
    triplets: Annotated[int, typer.Option(help="triplets of the evaluated dataset")] = 100,
    bridge_triplets: Annotated[int, typer.Option(help="triplets of each bridge dataset")] = 100,
    seed: Annotated[int, typer.Option(min=0, max=SEED_LIMIT - 1, help="the draw (0 to 2**32-1)")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="output folder (default WORKDIR/data/NAME-nN-sS; with all, its parent)"),
    ] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write a setup's expert training mixtures (loraK.train.jsonl), its evaluation files and its card.

    Example: loralab data setup setup-8 --triplets 100 --seed 0
    """
    from loralab.worlds.setups import SETUPS, build_setup
    from loralab.worlds.twohop import MAX_UNITS, MAX_UNITS_WHY

    if name != "all" and name not in SETUPS:
        raise LoralabError(
            f"setup {name}: choose one of {', '.join(SETUPS)}, or all{did_you_mean(name, [*SETUPS, 'all'])}"
        )
    positive("--triplets", triplets, MAX_UNITS, MAX_UNITS_WHY)
    positive("--bridge-triplets", bridge_triplets, MAX_UNITS, MAX_UNITS_WHY)
    names = list(SETUPS) if name == "all" else [name]
    check_output(out or workdir, "--out" if out else "--workdir")
    for n in names:
        default = f"{n}-n{triplets}-s{seed}" + ("" if bridge_triplets == 100 else f"-b{bridge_triplets}")
        folder = (out / default if name == "all" else out) if out else workdir / "data" / default
        if name == "all" and folder.exists() and not overwrite:
            console.print(f"already there: {folder} (pass --overwrite to rebuild it)")
            continue
        try:
            path = build_setup(
                folder, n, triplets, bridge_triplets=bridge_triplets, seed=seed, overwrite=overwrite
            )
        except ValueError as exc:  # too few familiar people for the RR datasets
            flag = f"--bridge-triplets {bridge_triplets}" if " bridge dataset: " in str(exc) else ""
            raise LoralabError(f"{flag or f'--triplets {triplets}'}: {exc}") from exc
        console.print(f"wrote {path}")


@data_app.command("graph")
def data_graph(
    variant: Annotated[str, typer.Option(help="shared or disjoint graphs")] = "shared",
    paths: Annotated[
        int, typer.Option(help="disjoint: paths per composition (6 x paths entities per set)")
    ] = 100,
    u1: Annotated[int, typer.Option(help="shared: people in U1")] = 100,
    u2: Annotated[int, typer.Option(help="shared: people in U2 (at least 3)")] = 100,
    u3: Annotated[int, typer.Option(help="shared: cities in U3 (at least 6)")] = 100,
    templates: Annotated[int, typer.Option(help="templates per relation to use (the first N of 50)")] = 50,
    dev_templates: Annotated[int, typer.Option(help="templates per unit held out for dev")] = 2,
    test_templates: Annotated[int, typer.Option(help="templates per unit held out for test")] = 2,
    seed: Annotated[int, typer.Option(min=0, max=SEED_LIMIT - 1, help="the draw (0 to 2**32-1)")] = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/graph-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write the graph suite (Appendix A.3): 5 atomic relations, 5 training compositions, Rel1->Rel2 held out.

    Example: loralab data graph --variant disjoint --paths 100 --seed 0
    """
    from loralab.worlds.graph import GRAPH_VARIANTS, build_graph
    from loralab.worlds.twohop import MAX_UNITS, MAX_UNITS_WHY

    if variant not in GRAPH_VARIANTS:
        raise LoralabError(
            f"--variant {variant}: choose one of {', '.join(GRAPH_VARIANTS)}{did_you_mean(variant, GRAPH_VARIANTS)}"
        )
    if variant == "disjoint":
        positive("--paths", paths, MAX_UNITS, MAX_UNITS_WHY)
    else:
        positive("--u1", u1, MAX_UNITS, MAX_UNITS_WHY)
        if u2 < 3:
            raise LoralabError(f"--u2 {u2}: a shared graph needs at least 3 people in U2")
        if u3 < 6:
            raise LoralabError(f"--u3 {u3}: a shared graph needs at least 6 cities in U3")
        positive("--u2", u2, MAX_UNITS, MAX_UNITS_WHY)
        positive("--u3", u3, MAX_UNITS, MAX_UNITS_WHY)
    if not 1 <= templates <= 50:
        raise LoralabError(f"--templates {templates}: must be between 1 and 50")
    if dev_templates < 0:
        raise LoralabError(f"--dev-templates {dev_templates}: must not be negative")
    if test_templates < 1 or dev_templates + test_templates >= templates:
        raise LoralabError(
            f"--test-templates {test_templates}: must be at least 1 and leave training templates "
            f"(with --dev-templates {dev_templates} of --templates {templates})"
        )
    size = f"p{paths}" if variant == "disjoint" else f"u{u1}-{u2}-{u3}"
    folder = out or workdir / "data" / f"graph-{variant}-{size}-s{seed}"
    check_output(folder, "--out" if out else "--workdir", new=not overwrite)
    try:
        path = build_graph(
            folder,
            variant,
            paths=paths,
            u1=u1,
            u2=u2,
            u3=u3,
            templates=templates,
            dev_templates=dev_templates,
            test_templates=test_templates,
            seed=seed,
            overwrite=overwrite,
        )
    except ValueError as exc:  # a shared graph whose U3 cannot give six different answers
        raise LoralabError(f"{f'--paths {paths}' if variant == 'disjoint' else f'--u3 {u3}'}: {exc}") from exc
    console.print(f"wrote {path}")


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="a dataset folder written by loralab data ...")],
    base: Annotated[
        str | None,
        typer.Option(help="the base preset whose corpus is checked: default (if not given) or test"),
    ] = None,
    preset: Annotated[str | None, preset_alias("--base")] = None,
) -> None:
    """Check a dataset: splits, leaks into training, answers, entities, and what the built-in base has seen.

    Example: loralab data validate loralab-work/data/setup-2-n100-s0
    """
    from loralab.models.tiny import BASE_PRESETS
    from loralab.worlds.validate import validate_dataset

    chosen: str = renamed("--base", base, preset, "default")
    if chosen not in BASE_PRESETS:
        hint = did_you_mean(chosen, BASE_PRESETS)
        raise LoralabError(
            f"--base {chosen}: checks a base preset's corpus; choose {', '.join(BASE_PRESETS)}{hint}"
        )
    result = validate_dataset(path, chosen)
    for line in result.lines():
        console.print(line, highlight=False, markup=False)
    problems = result.problems
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LoralabError(problems[0] + more)
    console.print("valid", highlight=False)
