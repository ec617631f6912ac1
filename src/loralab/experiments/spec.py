"""Experiment specs: *what* to run, as a YAML file validated on load (how to run it is the runner's flags).

A spec names base models, datasets (built by `loralab data ...`), experts trained on parts of those datasets,
libraries of experts, combination methods with their options, evaluation sets and seeds::

    bases: [default]                      # a base preset or imported base (loralab ls bases), or a folder
    datasets:
      data: {kind: setup, setup: setup-2}
    experts:
      lora1: {train: [{dataset: data, file: lora1.train.jsonl}], lora: {targets: mlp}}
      lora2: {train: [{dataset: data, file: lora2.train.jsonl}], lora: {targets: mlp}}
    libraries: {2-combination: [lora1, lora2]}
    methods: [{name: uniform}, {name: arrow, options: {top_k: 2}}]
    evaluations: [{dataset: data, split: test, prompting: cot}]
    seeds: [0]
    grid:
      datasets.data.setup: [setup-0, setup-2]

A *cell* is one evaluation: a base, a library, a method with its options, an evaluation set and a seed.
`expand` makes every combination of the spec's `bases`, `libraries`, `methods`, `evaluations` and `seeds`,
once per *grid point*. `grid` maps a dotted path into the spec (mapping keys, or list positions as numbers:
`methods.1.options.top_k`) to a list of values; its points are the cartesian product of those lists, each
value replacing the spec's own value at that path (and setting it where the spec leaves it out).

A library may list its own `methods` or `evaluations` (then the spec's are not used for it); a base may be a
base step, ``{name: ..., kind: arithmetic, source: default, steps: ...}`` (built once, cached like any base,
cells call it by name); `decode` sets how GSM evaluations decode and run code, and `tables` the report's
tables (`loralab.report.views`). The GSM experiment (`experiments/gsm/*.yaml`) uses all four. The types are
in `loralab.experiments.schema`.

`seeds` are independent replications: a cell's seed is its datasets' draw (unless a dataset spec fixes its
own `seed:`) and its experts' training seed. An expert's `role` (hop1, hop2, oracle, mixed, none; inferred
from its training files when absent, `role_of`) says which positive controls test it; `control_cells` gives
the cells that evaluate each member of a two-hop cell alone on its own held-out questions, which the runner
adds to the plan.

`load_spec` checks every grid point, the names a spec refers to (setups, methods and their options, datasets,
experts, bases, table libraries), promptings, template folders and the files it asks of each dataset; any
mistake is one `LoralabError` line, ``FILE:LINE: key.path: why``. `apply_scale` resizes a spec for a *scale*
(`SCALES`: test, default, paper, cpu-real; `loralab run SPEC --scale NAME`) without touching what it compares.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loralab.errors import LoralabError, did_you_mean
from loralab.experiments.datasets import DATASETS, GraphData, GsmData, SetupData, TwohopData
from loralab.experiments.schema import (
    ArithmeticBase,
    BaseEntry,
    Cell,
    ControlRef,
    DataRef,
    Evaluation,
    ExperimentSpec,
    Library,
    Loc,
    MethodRef,
    TrainPart,
)

__all__ = [
    "SCALES",
    "ArithmeticBase",
    "Cell",
    "ControlRef",
    "Evaluation",
    "ExperimentSpec",
    "MethodRef",
    "apply_scale",
    "check_spec",
    "control_cells",
    "control_tasks",
    "eval_file",
    "expand",
    "load_spec",
    "role_of",
    "summary",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------


class Scale(_Strict):
    """A scale: the sizes it sets wherever a spec has them (None: the spec's own value)."""

    triplets: int | None = None
    bridge_triplets: int | None = None
    templates: int | None = None
    paths: int | None = None
    units: int | None = Field(None, description="graph u1, u2 and u3")
    epochs: int | None = None
    lr: float | None = Field(None, description="every expert's learning rate")
    builtin_base: str | None = Field(None, description="built-in bases are replaced by this one")


SCALES: dict[str, Scale] = {
    # seconds on a CPU, for tests: the `test` base and a handful of facts
    "test": Scale(
        triplets=4, bridge_triplets=4, templates=8, paths=4, units=8, epochs=1, builtin_base="test"
    ),
    # the built-in default base on a 2-core CPU: 20 triplets (40 held-out questions per cell) keep the bridge
    # ablation's 14 distinct experts to about an hour (README)
    "default": Scale(triplets=20, bridge_triplets=20, templates=50, paths=20, units=20),
    # the paper's sizes (100 triplets, 50 templates, 5 epochs), for real models on GPUs
    "paper": Scale(triplets=100, bridge_triplets=100, templates=50, paths=100, units=100, epochs=5),
    # SmolLM2-135M-Instruct (`loralab base import smollm2`) on a 2-core CPU: 16 triplets, 3 epochs, built-in
    # bases replaced by smollm2 (experiments/paper/cpu-real.yaml: about 2 hours, README). lr 1e-3, not the
    # paper's 1e-4: 3 epochs of 16 triplets are ~140 steps, a tenth of the paper's 5 epochs of 100
    "cpu-real": Scale(
        triplets=16,
        bridge_triplets=16,
        templates=50,
        paths=16,
        units=16,
        epochs=3,
        lr=1e-3,
        builtin_base="smollm2",
    ),
}


def _sizes(data: Any, scale: Scale) -> dict[str, int]:
    """The sizes the scale sets on one dataset spec."""
    sizes: dict[str, int | None] = {"triplets": scale.triplets, "templates": scale.templates}
    if isinstance(data, SetupData):
        sizes["bridge_triplets"] = scale.bridge_triplets
    if isinstance(data, GraphData):
        sizes |= {"paths": scale.paths, "u1": scale.units, "u2": scale.units, "u3": scale.units}
    fields = type(data).model_fields
    return {k: v for k, v in sizes.items() if v is not None and k in fields}


def _rebased(bases: list[BaseEntry], builtin: str, presets: set[str]) -> list[BaseEntry]:
    """Built-in bases (and the sources of base steps) replaced by `builtin`; equal names once."""
    out: list[BaseEntry] = []
    for b in bases:
        if isinstance(b, str):
            b = builtin if b in presets else b
            if b in out:
                continue
        elif b.source in presets:
            b = b.model_copy(update={"source": builtin})
        out.append(b)
    return out


def apply_scale(spec: ExperimentSpec, name: str | None) -> ExperimentSpec:
    """`spec` resized for the scale `name`: dataset sizes, epochs, built-in base. A grid over a size the
    scale sets collapses to the scale's value. None leaves the spec as written."""
    if name is None:
        return spec
    if name not in SCALES:
        raise LoralabError(f"--scale {name}: choose one of {', '.join(SCALES)}{did_you_mean(name, SCALES)}")
    from loralab.models.tiny import BASE_PRESETS

    scale = SCALES[name]
    sized: dict[str, float] = {
        f"datasets.{k}.{f}": v for k, d in spec.datasets.items() for f, v in _sizes(d, scale).items()
    }
    datasets = {k: d.model_copy(update=_sizes(d, scale)) for k, d in spec.datasets.items()}
    experts = spec.experts
    lora = {k: v for k, v in (("epochs", scale.epochs), ("lr", scale.lr)) if v is not None}
    if lora:
        sized |= {f"experts.{k}.lora.{f}": v for k in experts for f, v in lora.items()}
        experts = {
            k: e.model_copy(update={"lora": e.lora.model_copy(update=lora)}) for k, e in experts.items()
        }
    bases = spec.bases
    if scale.builtin_base is not None:
        bases = _rebased(bases, scale.builtin_base, set(BASE_PRESETS))
    grid = {path: [sized[path]] if path in sized else values for path, values in spec.grid.items()}
    update = {"datasets": datasets, "experts": experts, "bases": bases, "grid": grid}
    return spec.model_copy(update=update)


# ---------------------------------------------------------------------------
# Loading: YAML with the line of every key, then pydantic, then references
# ---------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, loc: Loc, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.loc, self.message, self.line = loc, message, line


def _lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    """The 1-based line of every key (and list item) below `node`; duplicate keys are an error."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, key.value)
            if child in out:
                line = key.start_mark.line + 1
                raise _Invalid(child, f"duplicate key (first on line {out[child]})", line)
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*loc, i)] = item.start_mark.line + 1
            _lines(item, (*loc, i), out)


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of `loc`, or of its nearest ancestor in the file (loc parts the file lacks, such as a
    pydantic union tag, are skipped)."""
    found: Loc = ()
    for part in loc:
        if (*found, part) in lines:
            found = (*found, part)
    return lines.get(found, 1)


def _grid_path(path: str) -> Loc:
    return tuple(int(p) if p.isdigit() else p for p in path.split("."))


def _set_path(data: dict[str, Any], path: Loc, value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise KeyError(part)
            node = node[part]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise KeyError(part)
    last = path[-1]
    in_list = isinstance(node, list) and isinstance(last, int) and last < len(node)
    if not (in_list or isinstance(node, dict)):
        raise KeyError(last)
    node[last] = value


def _points(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values, strict=True))


def _at_point(raw: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy({k: v for k, v in raw.items() if k != "grid"})
    for path, value in point.items():
        try:
            _set_path(out, _grid_path(path), value)
        except KeyError:
            raise _Invalid(("grid", path), "no such place in the spec") from None
    return out


class _Problems(Exception):
    def __init__(self, problems: list[_Invalid]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


def _pydantic_errors(exc: ValidationError) -> list[_Invalid]:
    out = []
    for err in exc.errors():
        message = {"extra_forbidden": "unknown key", "missing": "missing required key"}.get(err["type"])
        # a validator's own sentence, without pydantic's "Value error, " in front of it
        said = err["msg"].removeprefix("Value error, ") if err["type"] == "value_error" else err["msg"]
        out.append(_Invalid(tuple(err["loc"]), message or said))
    return out


def _dataset_files(data: Any) -> set[str]:
    return DATASETS[data.kind].files(data)


def _known(data: Any) -> bool:
    """Whether a dataset's files are known (a setup dataset's setup exists)."""
    return DATASETS[data.kind].known(data)


def eval_file(evaluation: Evaluation, data: Any) -> str:
    """The file an evaluation reads: its `file`, else the held-out composition in its prompting's form."""
    if evaluation.file:
        return evaluation.file
    task = DATASETS[data.kind].held_out(evaluation.prompting == "cot")
    return f"{task}.{evaluation.split}.jsonl"


# ---------------------------------------------------------------------------
# Roles and the positive controls' cells
# ---------------------------------------------------------------------------

ROLE_TASKS: dict[str, tuple[str, ...]] = {"hop1": ("ab",), "hop2": ("bc",), "mixed": ("ab", "bc")}
"""The one-hop tasks a role's control asks (the oracle's: `control_tasks`)."""


def graph_hops(spec: ExperimentSpec, evaluation: Evaluation | None) -> dict[str, str] | None:
    """For an evaluation of a graph composition (Table 11's ``rel1_rel2_cot``): its dataset's task names ->
    the two-hop suite's (rel1: ab, rel2: bc, rel1_rel2: ac, rel1_rel2_cot: ac_cot); None otherwise. A graph
    expert's role is relative to the composition asked: the Rel1 expert is hop1 of Rel1->Rel2, none of
    Rel3->Rel4."""
    from loralab.worlds.graph import hops_of

    data = spec.datasets.get(evaluation.dataset) if evaluation is not None else None
    if evaluation is None or not isinstance(data, GraphData):
        return None
    return hops_of(eval_file(evaluation, data).split(".")[0])


def _part_tasks(
    spec: ExperimentSpec, part: TrainPart, evaluation: Evaluation | None = None
) -> list[str] | None:
    """The two-hop tasks a training part holds (a setup's loraK file: its mixture's tasks, bridges included;
    when a graph composition is evaluated, a part of that graph: its task as the composition's ab / bc / ac /
    ac_cot, or ``other``, and any other part None); None when it is not a two-hop task's training split."""
    from loralab.worlds.setups import SETUPS
    from loralab.worlds.twohop import TASKS

    data = spec.datasets.get(part.dataset)
    stem = part.filename.removesuffix(".train.jsonl")
    if not part.filename.endswith(".train.jsonl"):
        return None
    hops = graph_hops(spec, evaluation)
    if hops is not None and evaluation is not None:  # a graph composition: only its own graph's parts count
        return [hops.get(stem, "other")] if part.dataset == evaluation.dataset else None
    if isinstance(data, TwohopData):
        return [stem] if stem in TASKS else None
    if isinstance(data, SetupData) and data.setup in SETUPS:
        mixture = SETUPS[data.setup].experts.get(stem)
        return [p.task for p in mixture] if mixture else None
    return None


def expert_tasks(spec: ExperimentSpec, expert: str, evaluation: Evaluation | None = None) -> set[str] | None:
    """Every two-hop task the expert trains on; None when a part is not a two-hop task's training split."""
    tasks: set[str] = set()
    for part in spec.experts[expert].train:
        found = _part_tasks(spec, part, evaluation)
        if found is None:
            return None
        tasks |= set(found)
    return tasks


def role_of(spec: ExperimentSpec, expert: str, evaluation: Evaluation | None = None) -> str:
    """The expert's `role`, or the one its training files imply: ab only -> hop1; bc only -> hop2; ac or
    ac_cot only -> oracle; ab + bc -> mixed; anything else -> none. On a graph, the tasks are read relative
    to the evaluated composition (`graph_hops`), so without `evaluation` a graph expert has no role."""
    explicit = spec.experts[expert].role
    if explicit is not None:
        return explicit
    tasks = expert_tasks(spec, expert, evaluation) or set()
    if tasks == {"ab"}:
        return "hop1"
    if tasks == {"bc"}:
        return "hop2"
    if tasks and tasks <= {"ac", "ac_cot"}:
        return "oracle"
    return "mixed" if tasks == {"ab", "bc"} else "none"


def control_tasks(spec: ExperimentSpec, expert: str, evaluation: Evaluation | None = None) -> tuple[str, ...]:
    """The held-out tasks the expert's control asks: its role's hops; for an oracle, A->C asked directly
    (`ac`, the paper's LoRA 3), or with CoT (`ac_cot`) when that is the only form it trained on."""
    role = role_of(spec, expert, evaluation)
    if role == "oracle":
        return ("ac_cot",) if expert_tasks(spec, expert, evaluation) == {"ac_cot"} else ("ac",)
    return ROLE_TASKS.get(role, ())


def _control_dataset(spec: ExperimentSpec, expert: str, evaluation: Evaluation) -> str | None:
    """Where the expert's own held-out questions are: the evaluated dataset when it trains on it, else its
    first two-hop training dataset (None: it trains on no two-hop dataset). A graph expert's are on the
    evaluated graph only (its role is relative to that graph's composition)."""
    names = [
        p.dataset
        for p in spec.experts[expert].train
        if isinstance(spec.datasets.get(p.dataset), TwohopData | SetupData)
        or (p.dataset == evaluation.dataset and graph_hops(spec, evaluation) is not None)
    ]
    if evaluation.dataset in names:
        return evaluation.dataset
    return names[0] if names else None


def is_twohop(spec: ExperimentSpec, evaluation: Evaluation) -> bool:
    """The evaluation asks a two-hop dataset's A->C questions (`ac` or `ac_cot`) or a graph composition."""
    data = spec.datasets.get(evaluation.dataset)
    task = eval_file(evaluation, data).split(".")[0]
    twohop = isinstance(data, TwohopData | SetupData) and task in ("ac", "ac_cot")
    return twohop or graph_hops(spec, evaluation) is not None


def control_cells(cell: Cell) -> list[Cell]:
    """The positive controls' cells a two-hop cell depends on: each member with a role (`role_of`) alone
    (method `oracle`) on its own held-out one-hop questions (hop1, hop2, mixed) or A->C questions (oracle),
    on the cell's split and triplets (on a graph: the composition's relations' and its own files). None for
    a control cell or a cell that is not two-hop."""
    s, ev = cell.spec, cell.evaluation
    if cell.control is not None or not is_twohop(s, ev):
        return []
    names = {hop: task for task, hop in (graph_hops(s, ev) or {}).items()}
    out = []
    for member in cell.members:
        dataset = _control_dataset(s, member, ev)
        graph = dataset == ev.dataset and bool(names)
        for hop in control_tasks(s, member, ev) if dataset else ():
            prompting: Literal["cot", "direct"] = "cot" if hop == "ac_cot" else "direct"
            task = names[hop] if graph else hop
            control_ev = Evaluation(
                dataset=dataset or "",
                split=ev.split,
                prompting=prompting,
                file=f"{task}.{ev.split}.jsonl",
                triplets=ev.triplets,
            )
            ref = ControlRef(member, role_of(s, member, ev), task)
            out.append(
                Cell(
                    s,
                    cell.point,
                    cell.base,
                    f"{member} alone",
                    MethodRef(name="oracle"),
                    control_ev,
                    cell.seed,
                    ref,
                )
            )
    return out


def _check_datasets(spec: ExperimentSpec, problems: list[_Invalid]) -> None:
    from loralab.worlds.setups import SETUPS
    from loralab.worlds.twohop import CHAINS, VARIANTS

    for key, data in spec.datasets.items():
        loc: Loc = ("datasets", key)
        if isinstance(data, SetupData) and data.setup not in SETUPS:
            hint = did_you_mean(data.setup, SETUPS)
            message = f"unknown setup {data.setup!r}; choose one of {', '.join(SETUPS)}{hint}"
            problems.append(_Invalid((*loc, "setup"), message))
        if isinstance(data, TwohopData):
            if data.variant not in VARIANTS:
                hint = did_you_mean(data.variant, VARIANTS)
                problems.append(_Invalid((*loc, "variant"), f"choose one of {', '.join(VARIANTS)}{hint}"))
            if data.relations not in CHAINS:
                hint = did_you_mean(data.relations, CHAINS)
                problems.append(_Invalid((*loc, "relations"), f"choose one of {', '.join(CHAINS)}{hint}"))
        if isinstance(data, TwohopData | GraphData) and (
            data.dev_templates + data.test_templates >= data.templates
        ):
            problems.append(
                _Invalid((*loc, "test_templates"), "dev + test templates leave none for training")
            )
        if isinstance(data, GsmData) and data.source != "own" and not Path(data.source).is_dir():
            message = f"{data.source}: not a folder (own, or a folder with symbolic/ p1/ p2/ templates)"
            problems.append(_Invalid((*loc, "source"), message))


def _unknown(what: str, name: str, choices: Any) -> str:
    return f"unknown {what} {name!r}{did_you_mean(name, choices)}"


def _check_methods(spec: ExperimentSpec, methods: list[MethodRef], at: Loc, problems: list[_Invalid]) -> None:
    """Method names exist and their options fit their signatures and ranges; a dataset-file option names a
    real file."""
    from loralab.combination import METHODS
    from loralab.combination.registry import coerce_options

    for i, method in enumerate(methods):
        if method.name not in METHODS:
            choices = ", ".join(sorted(METHODS))
            message = f"{_unknown('method', method.name, METHODS)} (choose one of {choices})"
            problems.append(_Invalid((*at, i, "name"), message))
            continue
        for opt, value in method.options.items():
            loc = (*at, i, "options", opt)
            if isinstance(value, dict):  # a dataset file: checked here, a path by the time the method runs
                try:
                    ref = DataRef.model_validate(value)
                except ValidationError as exc:
                    problems.extend(_Invalid(loc + e.loc, e.message) for e in _pydantic_errors(exc))
                    continue
                if ref.dataset not in spec.datasets:
                    problems.append(
                        _Invalid((*loc, "dataset"), _unknown("dataset", ref.dataset, spec.datasets))
                    )
                    continue
                if not _known(spec.datasets[ref.dataset]):
                    continue
                if ref.file not in _dataset_files(spec.datasets[ref.dataset]):
                    problems.append(_Invalid((*loc, "file"), f"dataset {ref.dataset!r} has no {ref.file}"))
                    continue
                value = ref.file
            try:
                coerce_options(METHODS[method.name], {opt: value})
            except LoralabError as exc:
                problems.append(_Invalid(loc, str(exc).partition(": ")[2]))


def _check_experts(spec: ExperimentSpec, problems: list[_Invalid]) -> None:
    for key, expert in spec.experts.items():
        for i, part in enumerate(expert.train):
            loc: Loc = ("experts", key, "train", i)
            if part.dataset not in spec.datasets:
                problems.append(_Invalid((*loc, "dataset"), _unknown("dataset", part.dataset, spec.datasets)))
                continue
            if (part.file is None) == (part.task is None):
                problems.append(_Invalid(loc, "give one of file or task"))
                continue
            if not _known(spec.datasets[part.dataset]):
                continue  # its unknown setup is reported once
            files = _dataset_files(spec.datasets[part.dataset])
            if part.filename not in files:
                where = "file" if part.file else "task"
                message = (
                    f"dataset {part.dataset!r} has no {part.filename}{did_you_mean(part.filename, files)}"
                )
                problems.append(_Invalid((*loc, where), message))

        if expert.role not in (None, "none") and not any(
            isinstance(spec.datasets.get(p.dataset), TwohopData | SetupData) for p in expert.train
        ):
            problems.append(
                _Invalid(
                    ("experts", key, "role"),
                    "a control role needs a two-hop or setup training dataset (a graph expert's role is "
                    "read from the composition each cell asks; it cannot be written)",
                )
            )


def _check_refs(spec: ExperimentSpec) -> list[_Invalid]:
    """Every problem with the names the spec refers to: datasets, their files, experts, methods and options,
    evaluations, bases, report tables."""
    problems: list[_Invalid] = []
    _check_datasets(spec, problems)
    _check_experts(spec, problems)
    for lib, entry in spec.libraries.items():
        own = isinstance(entry, Library)
        for i, member in enumerate(spec.members(lib)):
            if member not in spec.experts:
                at: Loc = ("libraries", lib, "experts", i) if own else ("libraries", lib, i)
                problems.append(_Invalid(at, _unknown("expert", member, spec.experts)))
        if isinstance(entry, Library) and entry.methods:
            _check_methods(spec, entry.methods, ("libraries", lib, "methods"), problems)
        if isinstance(entry, Library) and entry.evaluations:
            _check_evaluations(spec, entry.evaluations, ("libraries", lib, "evaluations"), problems)
        if not spec.members(lib) and any(m.name != "base" for m in spec.methods_of(lib)):
            at = ("libraries", lib, "experts") if own else ("libraries", lib)
            problems.append(_Invalid(at, "a library without experts is evaluated only with method base"))
    _check_methods(spec, spec.methods, ("methods",), problems)
    _check_evaluations(spec, spec.evaluations, ("evaluations",), problems)
    _check_bases(spec, problems)
    _check_tables(spec, problems)
    return problems


def _check_evaluations(
    spec: ExperimentSpec, evaluations: list[Evaluation], at: Loc, problems: list[_Invalid]
) -> None:
    """Each evaluation names a dataset of the spec, a file it holds and a prompting its kind knows."""
    for i, ev in enumerate(evaluations):
        if ev.dataset not in spec.datasets:
            problems.append(_Invalid((*at, i, "dataset"), _unknown("dataset", ev.dataset, spec.datasets)))
            continue
        data = spec.datasets[ev.dataset]
        promptings = DATASETS[data.kind].promptings
        if ev.prompting not in promptings:
            hint = did_you_mean(ev.prompting, promptings)
            message = f"{data.kind} data: choose one of {', '.join(promptings)}{hint}"
            problems.append(_Invalid((*at, i, "prompting"), message))
        if not _known(data):
            continue  # its unknown setup is reported once
        file = eval_file(ev, data)
        if file not in _dataset_files(data):
            problems.append(_Invalid((*at, i), f"dataset {ev.dataset!r} has no {file}"))


def _check_bases(spec: ExperimentSpec, problems: list[_Invalid]) -> None:
    """Named bases or folders; a base step starts from a built-in base; no two bases share a name."""
    from loralab.models.load import base_names
    from loralab.models.tiny import BASE_PRESETS

    names = ", ".join(base_names())
    for i, base in enumerate(spec.bases):
        if isinstance(base, ArithmeticBase):
            if base.source not in BASE_PRESETS:
                hint = did_you_mean(base.source, BASE_PRESETS)
                message = f"{base.source!r}: only a built-in base ({', '.join(BASE_PRESETS)}) is trained further{hint}"
                problems.append(_Invalid(("bases", i, "source"), message))
        elif base not in base_names() and not Path(base).is_dir():
            hint = did_you_mean(base, base_names())
            problems.append(
                _Invalid(("bases", i), f"{base!r} is neither a named base ({names}) nor a folder{hint}")
            )
        elif base not in base_names() and not (Path(base) / "config.json").is_file():
            problems.append(
                _Invalid(("bases", i), f"{base!r}: no config.json; not a Hugging Face model folder")
            )
    seen = spec.base_names()
    for i, name in enumerate(seen):
        if name in seen[:i]:
            problems.append(_Invalid(("bases", i), f"{name!r}: two bases with one name"))


def _check_tables(spec: ExperimentSpec, problems: list[_Invalid]) -> None:
    for i, table in enumerate(spec.tables):
        for j, lib in enumerate(table.libraries or []):
            if lib not in spec.libraries:
                problems.append(
                    _Invalid(("tables", i, "libraries", j), _unknown("library", lib, spec.libraries))
                )


GRID_POINTS_LIMIT = 1000
"""Grid points a spec may have: each is validated and planned, so a grid of millions would take minutes and
gigabytes before the first cell (the largest grid of experiments/ has 9)."""


def _validate(raw: Any) -> ExperimentSpec:
    """Every grid point validated; the spec at the first point (with its grid) returned."""
    if not isinstance(raw, dict):
        raise _Invalid((), "a spec is a mapping of keys (name, bases, datasets, ...)")
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        raise _Invalid(("grid",), "a mapping of dotted paths to lists of values")
    for path, values in grid.items():
        if not isinstance(values, list) or not values:
            raise _Invalid(("grid", path), "a non-empty list of values")
        if not isinstance(path, str) or path.split(".")[0] == "grid":
            raise _Invalid(("grid", path), "a grid cannot vary itself")
        if path == "name":
            raise _Invalid(("grid", path), "a run has one name (its folder's); run a second spec instead")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
        for i, text in enumerate(seen):
            if text in seen[:i]:
                raise _Invalid(
                    ("grid", path, i), f"{values[i]!r} is given twice (it would run the same cells twice)"
                )
    sizes = [len(values) for values in grid.values()]
    if math.prod(sizes) > GRID_POINTS_LIMIT:
        shape = " x ".join(map(str, sizes))
        raise _Invalid(
            ("grid",), f"{math.prod(sizes):,} points ({shape}): at most {GRID_POINTS_LIMIT:,}; split the spec"
        )
    first: ExperimentSpec | None = None
    problems: dict[tuple[Loc, str], _Invalid] = {}  # every distinct problem of every grid point, in order
    for point in _points(grid):
        try:
            spec = ExperimentSpec.model_validate(_at_point(raw, point))
        except ValidationError as exc:
            found = _pydantic_errors(exc)
        except _Invalid as exc:
            found = [exc]
        else:
            found = _check_refs(spec)
            first = first or spec
        for err in found:
            blamed = _blame_grid(err, point, grid)
            problems.setdefault((blamed.loc, blamed.message), blamed)
    if problems:
        raise _Problems(list(problems.values()))
    assert first is not None
    return first.model_copy(update={"grid": grid})


def _blame_grid(err: _Invalid, point: dict[str, Any], grid: dict[str, list[Any]]) -> _Invalid:
    """An error inside a value the grid set is the grid value's fault."""
    for path, value in point.items():
        target = _grid_path(path)
        if err.loc[: len(target)] == target:
            at = ".".join(map(str, err.loc))
            return _Invalid(("grid", path, grid[path].index(value)), f"{value!r}: {at}: {err.message}")
    return err


MAX_NODES = 100_000
"""A spec whose YAML, aliases expanded, has more nodes than this is refused (an alias bomb grows
exponentially when walked)."""


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes of `node` with every alias expanded, counted without expanding (each node once, by identity)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a cycle counts once (YAML forbids them in safe_load anyway)
    if isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(v, memo) for v in node.value)
    else:
        total = 1
    memo[id(node)] = total = min(total, MAX_NODES + 1)
    return total


def check_spec(path: Path, scale: str | None = None) -> tuple[ExperimentSpec | None, list[str]]:
    """(the spec, []) or (None, every problem found), each one line ``FILE:LINE: key.path: why``. A file that
    cannot be read or parsed is one problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return None, [f"{path}: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not a UTF-8 text file (byte {exc.start})"]
    lines: dict[Loc, int] = {}
    try:
        node = yaml.compose(text)
        # aliases reuse a block (`lora: *cot`); nested ones can expand a kilobyte into a billion nodes
        size = _expanded_size(node, {}) if node is not None else 0
        if size > MAX_NODES:
            return None, [f"{path}: its aliases expand it to more than {MAX_NODES} YAML nodes"]
        raw = yaml.safe_load(text)
        if node is not None:
            _lines(node, (), lines)
    except _Invalid as err:  # a duplicate key
        return None, [_located(path, err, lines)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, [f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]
    except (RecursionError, ValueError) as exc:  # nesting too deep, or a value YAML cannot hold
        return None, [f"{path}: not valid YAML ({type(exc).__name__})"]
    try:
        return apply_scale(_validate(raw), scale), []
    except _Invalid as err:
        return None, [_located(path, err, lines)]
    except _Problems as many:
        return None, [_located(path, err, lines) for err in many.problems]


def _located(path: Path, err: _Invalid, lines: dict[Loc, int]) -> str:
    where = ".".join(map(str, err.loc))
    if err.loc[:1] == ("grid",):
        where = f"grid.{err.loc[1]}" if len(err.loc) > 1 else "grid"
    prefix = f"{where}: " if where else ""
    return f"{path}:{err.line or _line_of(err.loc, lines)}: {prefix}{err.message}"


def load_spec(path: Path, scale: str | None = None) -> ExperimentSpec:
    """Read and check a spec; an error is one line, ``FILE:LINE: key.path: why`` (the first problem, with how
    many more there are: `loralab validate` lists them all)."""
    spec, problems = check_spec(path, scale)
    if spec is None:
        more = f" (and {len(problems) - 1} more: loralab validate lists them)" if len(problems) > 1 else ""
        raise LoralabError(problems[0] + more)
    return spec


def expand(spec: ExperimentSpec) -> list[Cell]:
    """The cells: grid points x bases x libraries x methods x evaluations (the library's own, else the
    spec's) x seeds, in that nesting order."""
    cells: list[Cell] = []
    for point in _points(spec.grid):
        concrete = ExperimentSpec.model_validate(_at_point(spec.model_dump(), point))
        for base, library in itertools.product(concrete.base_names(), concrete.libraries):
            for method, evaluation, seed in itertools.product(
                concrete.methods_of(library), concrete.evaluations_of(library), concrete.seeds
            ):
                cells.append(Cell(concrete, point, base, library, method, evaluation, seed))
    return cells


def summary(spec: ExperimentSpec) -> str:
    """One paragraph: what the spec holds, how many cells it expands to, and the roles of its experts."""
    points = len(list(_points(spec.grid)))
    cells = expand(spec)
    controls = {
        (
            json.dumps(c.point, sort_keys=True, default=str),
            c.base,
            c.seed,
            c.control,
            c.evaluation.model_dump_json(),
        )
        for cell in cells
        for c in control_cells(cell)
    }
    found: dict[str, dict[str, None]] = {e: {} for e in spec.experts}
    for cell in cells:
        for e in cell.members:
            found[e][role_of(cell.spec, e, cell.evaluation)] = None
    for specs in {id(c.spec): c.spec for c in cells}.values():
        for e in specs.experts:
            if not found[e]:
                found[e][role_of(specs, e)] = None
    roles = ", ".join(f"{e}: {' or '.join(r)}" for e, r in found.items())
    return (
        f"{spec.name}: {len(spec.bases)} base(s), {len(spec.datasets)} dataset(s), {len(spec.experts)} "
        f"expert(s), {len(spec.libraries)} librar{'y' if len(spec.libraries) == 1 else 'ies'}, "
        f"{len(spec.methods)} method(s), {len(spec.evaluations)} evaluation(s), {len(spec.seeds)} seed(s), "
        f"{points} grid point(s): {len(cells)} cells, plus at most {len(controls)} positive-control "
        f"evaluation(s) (each expert alone; fewer where they coincide). Roles: {roles}."
    )
