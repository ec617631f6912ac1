"""The easy-to-hard GSM experiment (the paper's Section 4.2 and Appendix A.4: Tables 2, 3, 12, 13, 14).

One LoRA expert is trained on GSM-Symbolic's base level and one on P1 (one more clause), in a fine-tuning
format (`cot`: worked natural-language solutions; `code`: the family's reusable Python functions up to the
instance's level; `code-whole`: every level's function, the paper's "whole computation graph" code). They
are combined (Uniform, Arrow, ...) and evaluated on P2 (two more clauses), which neither saw, with a prompt
style (0-shot CoT, 8-shot GSM8K, tool-integrated reasoning). A config (`GsmExperiment`, YAML in
`experiments/gsm/`) says *what* to run as a list of tables; `run_experiment` builds what is missing and
prints them:

- the base, when the config asks for it, trained further on generated easy arithmetic (`ArithmeticSpec`:
  the built-in base never saw a number being added) -> a derived base in the base cache, named by hash;
- the datasets, one folder per fine-tuning format -> ``WORKDIR/data/gsm-...-HASH/``;
- the experts, one per (level, format, LoRA targets) -> ``WORKDIR/experts/LEVEL-FORMAT-TARGETS-HASH/``;
- the cells, one per (base, experts, method, prompt, evaluated file) -> rows of ``WORKDIR/results.sqlite``
  keyed by content (`cell_key`).

Everything is content-addressed and written atomically, so a rerun skips what exists and resumes a killed
run; the tables are then drawn from the store alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loralab.artifacts import META, atomic_dir, config_hash, provenance, write_json
from loralab.errors import LoralabError
from loralab.experiments.plan import base_identity
from loralab.gsm.arithmetic import ArithmeticSpec, ensure_arithmetic_base
from loralab.gsm.evaluate import GSM_EVALUATOR_VERSION, DecodeConfig
from loralab.gsm.prompts import PROMPTS

Level = Literal["symbolic", "p1", "p2"]
Format = Literal["cot", "code", "code-whole"]
Targets = Literal["mlp", "attention", "both"]
FORMATS: dict[str, tuple[str, str]] = {
    "cot": ("cot", "level"),
    "code": ("code", "level"),
    "code-whole": ("code", "whole"),
}
"""Fine-tuning format -> (`build_gsm` solution, code graph)."""
EXPERT_LEVELS = ("symbolic", "p1")
SINGLE = {"expert:symbolic": "symbolic", "expert:p1": "p1"}
"""Methods that are one expert alone (a comparison row, not in the paper's tables)."""
DATA_VERSION = "gsm-exp-1"
_PRESET_DIR = Path(__file__).resolve().parents[3] / "experiments" / "gsm"
PRESET_NAMES = ("test", "default", "paper")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """Which templates, and how many instances of each level the experiment uses."""

    templates: str | None = Field(
        "own", description="'own' (the project's 10 families) or a folder with symbolic/ p1/ p2/ templates"
    )
    seed: int = Field(0, description="seed of the instance draws")
    train_per_template: int = Field(40, ge=1, le=40, description="training instances per template and level")
    p2_per_template: int = Field(2, ge=1, description="P2 evaluation instances per template (paper: 2)")


class LoraSpec(_Strict):
    """How every expert is trained (its LoRA targets come from the table that needs it)."""

    r: int = Field(16, ge=1, description="LoRA rank (paper: 16)")
    alpha: int = Field(32, gt=0, description="LoRA alpha")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout (paper: 0.05)")
    lr: float | None = Field(None, gt=0, description="None: 3e-3 on a built-in base, else 1e-4 (paper)")
    epochs: int | None = Field(None, ge=1, description="None: 6 on a built-in base, else 5")
    batch_size: int = Field(16, ge=1, description="examples per step")
    max_len: int = Field(768, ge=8, description="longest training example in tokens")
    seed: int = 0
    code_epochs: int | None = Field(
        None, ge=1, description="epochs of the code-format experts (None: `epochs`, like the others)"
    )

    def for_format(self, fmt: str) -> dict[str, Any]:
        """The training settings of an expert in fine-tuning format `fmt` (what its hash and ExpertConfig get)."""
        settings = self.model_dump(exclude={"code_epochs"})
        if self.code_epochs is not None and FORMATS[fmt][0] == "code":
            settings["epochs"] = self.code_epochs
        return settings


class TableSpec(_Strict):
    """One result table: every combination of its formats, targets and methods, evaluated with every
    prompt on every level's test file. "base" ignores formats and targets; "expert:symbolic" and
    "expert:p1" are one expert alone."""

    name: str = Field(description="short name, e.g. table2")
    title: str = Field(description="what the table shows")
    methods: list[str] = Field(["base", "uniform", "arrow"], description="base, expert:LEVEL or a method")
    formats: list[Format] = Field(["cot"], description="fine-tuning formats of the experts")
    targets: list[Targets] = Field(["attention"], description="LoRA target modules of the experts")
    prompts: list[str] = Field(["cot"], description="prompt styles (loralab.gsm.prompts)")
    levels: list[Level] = Field(["p2"], description="evaluated levels (their test split)")
    errors: bool = Field(False, description="also print the error analysis of these cells (Table 14)")

    @model_validator(mode="after")
    def _known(self) -> TableSpec:
        from loralab.combination import METHODS

        for m in self.methods:
            if m != "base" and m not in SINGLE and m not in METHODS:
                known = ", ".join(["base", *SINGLE, *sorted(METHODS)])
                raise ValueError(f"method {m!r}: choose one of {known}")
        for p in self.prompts:
            if p not in PROMPTS:
                raise ValueError(f"prompt {p!r}: choose one of {', '.join(PROMPTS)}")
        return self


class GsmExperiment(_Strict):
    """What one GSM experiment runs (how it runs — workdir, device, batch size — are `run_experiment`'s
    arguments)."""

    name: str = Field(description="the run's name (its folder under WORKDIR/runs)")
    description: str = ""
    base: str | None = Field(description="built-in base, imported base or model folder; None: pass --base")
    arithmetic: ArithmeticSpec | None = Field(None, description="train the base on arithmetic first")
    data: DataSpec = DataSpec()
    lora: LoraSpec = LoraSpec()
    options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"arrow": {"top_k": 2}}, description="method -> its options"
    )
    decode: DecodeConfig = DecodeConfig()
    tables: list[TableSpec] = Field(min_length=1)


# ----------------------------------------------------------------------------------------------------------
# Loading configs


def _lines(node: yaml.Node, loc: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*loc, key.value)] = key.start_mark.line + 1
            _lines(value, (*loc, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*loc, i), out)


def load_experiment(path: Path | str) -> GsmExperiment:
    """Read and check a config; a mistake is one line, ``FILE:LINE: key.path: why``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise LoralabError(f"{path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LoralabError(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        return GsmExperiment.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        while loc and loc not in lines:
            loc = loc[:-1]
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        raise LoralabError(f"{path}:{lines.get(loc, 1)}: {where}: {message}") from None


def preset_path(name: str) -> Path:
    """The config file of a preset (`experiments/gsm/NAME.yaml` in the source tree)."""
    if name not in PRESET_NAMES:
        raise LoralabError(f"--preset {name}: choose one of {', '.join(PRESET_NAMES)}")
    path = _PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise LoralabError(
            f"--preset {name}: {path} not found (run from a source checkout, or pass --config)"
        )
    return path


# ----------------------------------------------------------------------------------------------------------
# Datasets


def _templates_root(data: DataSpec) -> Path:
    from loralab.gsm.datasets import own_templates_dir

    if data.templates is None:
        raise LoralabError("data.templates: this config needs a template folder (pass --templates DIR)")
    if data.templates == "own":
        return own_templates_dir()
    root = Path(data.templates)
    if not root.is_dir():
        raise LoralabError(f"--templates {root}: not a folder")
    return root


def ensure_dataset(workdir: Path, data: DataSpec, fmt: str) -> Path:
    """The experiment's dataset in fine-tuning format `fmt`: `symbolic.train/test`, `p1.train/test` (the
    first `train_per_template` of the 40 training instances per template) and `p2.test` with
    `p2_per_template` instances per template (the first 2 are the standard dataset's P2 questions)."""
    from loralab.gsm.datasets import FINETUNE_LEVELS, distinct_instances, gsm_files, gsm_row
    from loralab.gsm.solutions import families
    from loralab.gsm.templates import load_templates
    from loralab.worlds.jsonl import write_jsonl

    root = _templates_root(data)
    solution, graph = FORMATS[fmt]
    label = "own" if data.templates == "own" else root.name
    key = config_hash(
        {"data": data.model_dump(), "root": str(root.resolve()), "format": fmt, "v": DATA_VERSION}
    )
    out = workdir / "data" / f"gsm-{label}-{fmt}-{key}"
    if (out / META).is_file():
        return out
    by_level = load_templates(root)
    files = gsm_files(by_level, data.seed, solution, graph, skip_inconsistent=data.templates != "own").files
    rows: dict[str, list[dict[str, Any]]] = {}
    for level in FINETUNE_LEVELS:
        rows[f"{level}.train.jsonl"] = [
            r for r in files.get(f"{level}.train.jsonl", []) if r["instance"] < data.train_per_template
        ]
        rows[f"{level}.test.jsonl"] = files.get(f"{level}.test.jsonl", [])
    code = families(by_level) if solution == "code" else {}
    p2 = []
    for template in by_level.get("p2", []):
        try:
            drawn = distinct_instances(template, data.p2_per_template, data.seed)
        except LoralabError:
            if data.templates == "own":
                raise
            continue
        p2 += [
            gsm_row(x, k, "test", solution, code.get(template.family, ()), graph) for k, x in enumerate(drawn)
        ]
    rows["p2.test.jsonl"] = p2
    with atomic_dir(out, overwrite=True) as tmp:
        for name, content in rows.items():
            write_jsonl(tmp / name, content)
        write_json(
            tmp / META,
            {
                "generator": DATA_VERSION,
                "kind": "gsm-experiment",
                "templates": str(root),
                "format": fmt,
                **data.model_dump(),
                "counts": {name: len(content) for name, content in rows.items()},
                **provenance(),
            },
        )
    return out


# ----------------------------------------------------------------------------------------------------------
# Planning: experts and cells


@dataclass(frozen=True)
class ExpertJob:
    level: str
    fmt: str
    targets: str

    @property
    def label(self) -> str:
        return f"{self.level}-{self.fmt}-{self.targets}"


@dataclass(frozen=True)
class CellJob:
    table: str
    method: str
    fmt: str | None
    targets: str | None
    prompt: str
    level: str

    @property
    def experts(self) -> tuple[ExpertJob, ...]:
        if self.method == "base" or self.fmt is None or self.targets is None:
            return ()
        levels = (SINGLE[self.method],) if self.method in SINGLE else EXPERT_LEVELS
        return tuple(ExpertJob(lv, self.fmt, self.targets) for lv in levels)


def plan_cells(spec: GsmExperiment) -> list[CellJob]:
    """Every table's cells in table order (a cell two tables share is listed, and stored, once)."""
    out: list[CellJob] = []
    seen: set[tuple[Any, ...]] = set()
    for table in spec.tables:
        for method in table.methods:
            combos: Sequence[tuple[str | None, str | None]] = (
                [(None, None)] if method == "base" else [(f, t) for f in table.formats for t in table.targets]
            )
            for fmt, targets in combos:
                for prompt in table.prompts:
                    for level in table.levels:
                        job = CellJob(table.name, method, fmt, targets, prompt, level)
                        ident = (method, fmt, targets, prompt, level)
                        if ident not in seen:
                            seen.add(ident)
                            out.append(job)
    return out


def _expert_dir(workdir: Path, job: ExpertJob, base: Path, train: Path, lora: LoraSpec) -> Path:
    digest = hashlib.sha256(train.read_bytes()).hexdigest()
    key = config_hash(
        {"base": base_identity(base), "train": digest, "lora": lora.for_format(job.fmt), "t": job.targets}
    )
    return workdir / "experts" / f"{job.label}-{key}"


def _expert_config(lora: LoraSpec, job: ExpertJob) -> Any:
    from loralab.experts.config import ExpertConfig

    return ExpertConfig(targets=job.targets, **lora.for_format(job.fmt))


# ----------------------------------------------------------------------------------------------------------
# Running


@dataclass
class RunResult:
    """What `run_experiment` produced: the run folder, the stored cells by table, and the tables' text."""

    folder: Path
    cells: dict[str, list[dict[str, Any]]]
    markdown: str
    trained: int
    evaluated: int
    seconds: float


def run_experiment(
    spec: GsmExperiment,
    workdir: Path | str,
    base: str | None = None,
    templates: str | None = None,
    device: str | None = None,
    batch_size: int = 32,
    log: Any = print,
) -> RunResult:
    """Build what is missing (arithmetic base, datasets, experts), evaluate every cell not yet stored, and
    return the tables drawn from the results store. `base` and `templates` override the config's."""
    from loralab.models.load import resolve_base

    start = time.time()
    workdir = Path(workdir)
    spec = _with_overrides(spec, base, templates)
    assert spec.base is not None
    base_path = resolve_base(spec.base)
    if spec.arithmetic is not None:
        base_path = ensure_arithmetic_base(base_path, spec.arithmetic, log)
    jobs = plan_cells(spec)
    formats = sorted({j.fmt for j in jobs if j.fmt is not None} | {"cot"})
    data = {fmt: ensure_dataset(workdir, spec.data, fmt) for fmt in formats}
    experts, trained = _train_experts(spec, workdir, base_path, jobs, data, log)
    evaluated = _evaluate_cells(spec, workdir, base_path, jobs, data, experts, device, batch_size, log)
    cells, markdown = gsm_tables(
        workdir / "results.sqlite", spec, jobs, _keys(spec, base_path, jobs, data, experts)
    )
    folder = workdir / "runs" / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tables.md").write_text(markdown)
    write_json(folder / "config.json", spec.model_dump())
    seconds = time.time() - start
    write_json(
        folder / META,
        {
            "base": str(base_path),
            "trained": trained,
            "evaluated": evaluated,
            "seconds": round(seconds, 1),
            **provenance(),
        },
    )
    return RunResult(folder, cells, markdown, trained, evaluated, seconds)


def describe_plan(spec: GsmExperiment, base: str | None = None, templates: str | None = None) -> str:
    """What `run_experiment` would do with this config, without touching any file: base, datasets, experts
    and cells per table."""
    spec = _with_overrides(spec, base, templates)
    jobs = plan_cells(spec)
    experts = list(dict.fromkeys(e for j in jobs for e in j.experts))
    formats = sorted({j.fmt for j in jobs if j.fmt is not None} | {"cot"})
    lines = [
        f"{spec.name}: {spec.description}",
        f"base: {spec.base}"
        + (f", trained {spec.arithmetic.steps} steps on arithmetic" if spec.arithmetic else ""),
        f"templates: {spec.data.templates}; formats: {', '.join(formats)}; "
        f"{spec.data.train_per_template} train / template, {spec.data.p2_per_template} P2 / template",
        f"{len(experts)} experts: {', '.join(e.label for e in experts) or '-'}",
        f"{len(jobs)} cells:",
    ]
    for table in spec.tables:
        n = sum(1 for j in jobs if j.table == table.name)
        lines.append(
            f"  {table.name} ({n} new cells{', error analysis' if table.errors else ''}): {table.title}"
        )
    return "\n".join(lines)


def _with_overrides(spec: GsmExperiment, base: str | None, templates: str | None) -> GsmExperiment:
    update: dict[str, Any] = {}
    if base is not None:
        update["base"] = base
    if templates is not None:
        update["data"] = spec.data.model_copy(update={"templates": templates})
    spec = spec.model_copy(update=update)
    if spec.base is None:
        raise LoralabError(f"{spec.name}: this config names no base; pass --base (a model folder)")
    return spec


def _train_experts(
    spec: GsmExperiment, workdir: Path, base: Path, jobs: list[CellJob], data: dict[str, Path], log: Any
) -> tuple[dict[ExpertJob, Path], int]:
    from loralab.experts.train import train_expert

    needed = list(dict.fromkeys(e for j in jobs for e in j.experts))
    out, trained = {}, 0
    for job in needed:
        train = data[job.fmt] / f"{job.level}.train.jsonl"
        folder = _expert_dir(workdir, job, base, train, spec.lora)
        if not (folder / META).is_file():
            log(f"training expert {job.label} on {train}")
            train_expert(base, [train], folder, _expert_config(spec.lora, job), job.label, overwrite=True)
            trained += 1
        out[job] = folder
    return out, trained


def _cell_inputs(
    job: CellJob, spec: GsmExperiment, data: dict[str, Path], experts: dict[ExpertJob, Path]
) -> tuple[Path, list[Path], str, dict[str, Any]]:
    """(evaluated file, expert folders, combination method, its options) of a cell."""
    file = data["cot"] / f"{job.level}.test.jsonl"
    folders = [experts[e] for e in job.experts]
    if job.method == "base":
        return file, [], "base", {}
    if job.method in SINGLE:
        return file, folders, "oracle", {}
    return file, folders, job.method, dict(spec.options.get(job.method, {}))


def cell_key(
    base: Path,
    data: Path,
    experts: Sequence[Path],
    method: str,
    options: dict[str, Any],
    prompt: str,
    decode: DecodeConfig,
) -> str:
    """The content key of a GSM cell: base, dataset file contents, experts (folder names carry their
    content hashes), method and options, prompt, decoding and the evaluator version."""
    return config_hash(
        {
            "kind": "gsm",
            "base": base_identity(base),
            "data": hashlib.sha256(data.read_bytes()).hexdigest(),
            "experts": [e.name for e in experts],
            "method": method,
            "options": options,
            "prompt": prompt,
            "decode": decode.model_dump(),
            "evaluator": GSM_EVALUATOR_VERSION,
        },
        16,
    )


def _keys(
    spec: GsmExperiment,
    base: Path,
    jobs: list[CellJob],
    data: dict[str, Path],
    experts: dict[ExpertJob, Path],
) -> list[str]:
    keys = []
    for job in jobs:
        file, folders, method, options = _cell_inputs(job, spec, data, experts)
        keys.append(cell_key(base, file, folders, method, options, job.prompt, spec.decode))
    return keys


def _groups(jobs: list[CellJob]) -> Iterator[tuple[tuple[Any, ...], list[int]]]:
    """Cells that share a model (experts and method), so it is loaded once for all their prompts and files."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.method, job.experts), []).append(i)
    yield from groups.items()


def _evaluate_cells(
    spec: GsmExperiment,
    workdir: Path,
    base: Path,
    jobs: list[CellJob],
    data: dict[str, Path],
    experts: dict[ExpertJob, Path],
    device: str | None,
    batch_size: int,
    log: Any,
) -> int:
    from loralab.combination import combine
    from loralab.experiments.store import add_cell, connect, stored_keys
    from loralab.gsm.evaluate import cell_record, evaluate_gsm, hf_batch_generate
    from loralab.models.load import load_base
    from loralab.worlds.jsonl import read_jsonl

    db = workdir / "results.sqlite"
    keys = _keys(spec, base, jobs, data, experts)
    con = connect(db)
    evaluated = 0
    try:
        done = set(stored_keys(con))
        for _, members in _groups(jobs):
            todo = [i for i in members if keys[i] not in done]
            if not todo:
                continue
            first = jobs[todo[0]]
            file, folders, method, options = _cell_inputs(first, spec, data, experts)
            model, tokenizer = load_base(base, device=device)
            if method != "base":
                model = combine((model, tokenizer), folders, method, **options)
            generate = hf_batch_generate(model, tokenizer, spec.decode.max_new_tokens, batch_size)
            for i in todo:
                job = jobs[i]
                file, folders, method, options = _cell_inputs(job, spec, data, experts)
                label = _method_label(job)
                log(f"evaluating {label} on {job.level} with the {job.prompt} prompt")
                examples = read_jsonl(file, required=("prompt", "gold"))
                result = evaluate_gsm(generate, examples, job.prompt, tokenizer, spec.decode, batch_size)
                record = cell_record(
                    result,
                    run=spec.name,
                    base=base.name,
                    dataset=f"{file.parent.name.rsplit('-', 2)[0]}/{file.stem}",
                    dataset_version=DATA_VERSION,
                    prompt=job.prompt,
                    method=label,
                    library=_library_label(job),
                    config={
                        "base": str(base),
                        "experts": [str(f) for f in folders],
                        "method": method,
                        "options": options,
                        "data": str(file),
                        "format": job.fmt,
                        "targets": job.targets,
                        "decode": spec.decode.model_dump(),
                    },
                )
                add_cell(con, record, result.rows, key=keys[i])
                evaluated += 1
    finally:
        con.close()
    return evaluated


def _method_label(job: CellJob) -> str:
    return job.method


def _library_label(job: CellJob) -> str:
    if job.method == "base":
        return "-"
    levels = "+".join(e.level for e in job.experts)
    return f"{levels} ({job.fmt}, {job.targets})"


# ----------------------------------------------------------------------------------------------------------
# Tables


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def _accuracy(cell: dict[str, Any]) -> str:
    return f"{cell['accuracy']:.2f} [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]"


def _row_label(job: CellJob) -> list[str]:
    return [job.method, job.fmt or "-", job.targets or "-"]


def accuracy_table(table: TableSpec, jobs: list[CellJob], cells: dict[CellJob, dict[str, Any]]) -> str:
    """Markdown: one row per (method, format, targets), one column per (prompt, level): accuracy [95% CI]."""
    columns = [(p, lv) for p in table.prompts for lv in table.levels]
    header = ["method", "format", "targets", *(f"{p} on {lv}" for p, lv in columns), "n"]
    rows: dict[tuple[str, ...], dict[tuple[str, str], dict[str, Any]]] = {}
    for job in jobs:
        cell = cells.get(job)
        if cell is not None:
            rows.setdefault(tuple(_row_label(job)), {})[(job.prompt, job.level)] = cell
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, by_column in rows.items():
        ns = sorted({str(c["n"]) for c in by_column.values()})
        values = [_accuracy(by_column[c]) if c in by_column else "" for c in columns]
        lines.append("| " + " | ".join([*label, *values, "/".join(ns)]) + " |")
    return "\n".join(lines) + "\n"


def error_table(jobs: list[CellJob], cells: dict[CellJob, dict[str, Any]]) -> str:
    """Markdown, the paper's Table 14 turned sideways: per cell, the share of each solution type and of each
    error type (rule-based, `analysis.analyze`), and how many outputs held no number."""
    from loralab.gsm.analysis import ERROR_TYPES, SOLUTION_TYPES

    header = ["method", "format", "targets", "prompt", "level", "n", "accuracy"]
    header += (
        [f"{s} solutions" for s in SOLUTION_TYPES] + [f"error: {e}" for e in ERROR_TYPES] + ["no answer"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for job in jobs:
        cell = cells.get(job)
        if cell is None:
            continue
        errors = cell["config"]["errors"]
        n = int(cell["n"])
        kinds = [_pct(sum(errors[s].values()), n) for s in SOLUTION_TYPES]
        kinds += [_pct(sum(errors[s][e] for s in SOLUTION_TYPES), n) for e in ERROR_TYPES]
        values = [*_row_label(job), job.prompt, job.level, str(n), f"{cell['accuracy']:.2f}", *kinds]
        values.append(str(cell["config"]["no_answer"]))
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def gsm_tables(
    db: Path, spec: GsmExperiment, jobs: list[CellJob], keys: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Every table of `spec`, drawn from the stored cells: (cells by table name, Markdown of all tables)."""
    from loralab.experiments.store import cells as stored_cells
    from loralab.experiments.store import connect

    con = connect(db, create=False)
    try:
        found = {c["key"]: c for c in stored_cells(con, keys=keys)}
    finally:
        con.close()
    by_job = {job: found[k] for job, k in zip(jobs, keys, strict=True) if k in found}
    ident = {(j.method, j.fmt, j.targets, j.prompt, j.level): j for j in jobs}
    parts, out = [f"# {spec.name}\n\n{spec.description}\n"], {}
    for table in spec.tables:
        members = [
            ident[key]
            for key in ident
            if key[0] in table.methods
            and (key[0] == "base" or (key[1] in table.formats and key[2] in table.targets))
            and key[3] in table.prompts
            and key[4] in table.levels
        ]
        out[table.name] = [by_job[j] for j in members if j in by_job]
        parts.append(f"## {table.name}: {table.title}\n\n{accuracy_table(table, members, by_job)}")
        if table.errors:
            parts.append(f"### {table.name}: error analysis\n\n{error_table(members, by_job)}")
    return out, "\n".join(parts)


__all__ = [
    "ArithmeticSpec",
    "DataSpec",
    "GsmExperiment",
    "LoraSpec",
    "TableSpec",
    "ensure_arithmetic_base",
    "ensure_dataset",
    "load_experiment",
    "plan_cells",
    "preset_path",
    "run_experiment",
]
