"""The plan: a spec's grid as content-addressed jobs, and what each job does.

`plan` turns a spec (at a scale) into three kinds of jobs, each named by the hash of what determines it:

- a *dataset* (its generator, sizes and seed) -> ``WORKDIR/datasets/KIND-...-HASH/``
- an *expert* (base, training files' dataset hashes, LoRA config with the cell's seed)
  -> ``WORKDIR/experts/NAME-HASH/`` (a finished ``OTHERNAME-HASH`` of another spec in the same workdir is
  taken as it is: the same expert under another name)
- a *cell* (base, its experts' hashes in library order, method and options, evaluation file, decoding)
  -> a row of ``WORKDIR/results.sqlite`` whose `key` column is the hash.

A base contributes `base_identity` to every key (the one definition). A base step (`kind: arithmetic`, the
GSM experiment's continued pretraining) is built here when missing, into the base cache, and is then a base
folder like any other. A cell is scored by its dataset kind's evaluator (`DATASETS[kind].evaluator`); a GSM
cell's key adds its prompt style and decoding (`DecodeConfig`: TIR rounds, sandbox limits), a graph
composition cell the version of its retention questions. These keys name
folders and rows that earlier runs wrote, so they must not change (tests/test_plan_keys.py pins them); the
one deliberate change so far: graph composition cells gained their retention questions (`GRAPH_RETENTION`).

For every two-hop cell the plan adds the positive controls' cells it depends on
(`loralab.experiments.spec.control_cells`): each member with a role (hop1, hop2, oracle, mixed) alone on
its own held-out questions. They are cells like any other, keyed by content, so a control shared by many
cells (or equal to a cell of the spec) is evaluated once, and resumed like the rest; each two-hop cell's
record lists its controls' keys (`record["controls"]`), which is how the report finds them.

Seeds: a cell's seed is both its datasets' draw (a dataset spec without `seed`) and its experts' training
seed, so `seeds: [0, 1, 2]` gives three independent replications, stored as three cells each.

Two cells (or two experiments) that need the same expert share one folder, so it is trained once. The job
functions (`build_dataset`, `train_job`, `evaluate_job`) are module-level so that any executor (local, or
Ray shipping them to workers by name) runs the same code; `store_cell` is the one way a cell reaches the
results store. `loralab.experiments.runner` executes a plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loralab.artifacts import META, atomic_dir, config_hash, read_json, read_json_object, write_json
from loralab.errors import LoralabError
from loralab.evaluation.evaluators import EVALUATORS
from loralab.experiments.datasets import DATASETS
from loralab.experiments.spec import (
    ArithmeticBase,
    Cell,
    ExperimentSpec,
    control_cells,
    eval_file,
    expand,
    graph_hops,
    role_of,
)
from loralab.experts.config import ExpertConfig
from loralab.gsm.evaluate import DecodeConfig

RESULTS = "results.sqlite"
EVALUATOR_VERSION = EVALUATORS["twohop"].version
GRAPH_RETENTION = "graph-1"
"""Part of a graph composition cell's key: the version of its retention questions (`retention_sets`)."""
MAX_NEW_TOKENS = {"cot": 128, "direct": 48}
EVAL_BATCH = 64


@dataclass(frozen=True)
class DatasetJob:
    key: str
    label: str
    spec: dict[str, Any]  # the dataset spec with its seed resolved
    path: Path

    def done(self) -> bool:
        return (self.path / META).is_file()


@dataclass(frozen=True)
class ExpertJob:
    key: str
    name: str
    base: str
    files: tuple[Path, ...]
    config: dict[str, Any]  # ExpertConfig, seed set
    datasets: tuple[str, ...]  # keys of the datasets its files come from
    path: Path

    def done(self) -> bool:
        return (self.path / META).is_file()


@dataclass(frozen=True)
class CellJob:
    key: str
    base: str
    data: Path
    dataset: str  # key of the dataset holding `data`
    experts: tuple[str, ...]  # expert keys, in library order
    method: str
    options: dict[str, Any]
    library: str
    max_new_tokens: int
    record: dict[str, Any] = field(hash=False)  # the cell's place in the experiment (stored with it)
    evaluator: str = "twohop"  # the `EVALUATORS` entry that scores it (its dataset kind's)
    prompt: str = "cot"  # gsm: the prompt style
    decode: dict[str, Any] | None = field(default=None, hash=False)  # gsm: `DecodeConfig`


@dataclass
class Plan:
    run: str
    workdir: Path
    datasets: dict[str, DatasetJob]
    experts: dict[str, ExpertJob]
    cells: list[CellJob]
    bases: dict[str, str] = field(default_factory=dict)  # a cell's base name -> what it loads

    @property
    def folder(self) -> Path:
        return self.workdir / "runs" / self.run

    @property
    def db(self) -> Path:
        return self.workdir / RESULTS

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "datasets": [asdict(d) for d in self.datasets.values()],
            "experts": [asdict(e) for e in self.experts.values()],
            "cells": [asdict(c) for c in self.cells],
            "bases": self.bases,
        }


def run_name(spec: ExperimentSpec, scale: str | None) -> str:
    """The run folder's name: NAME.SCALE, or NAME for a spec run as written."""
    return f"{spec.name}.{scale}" if scale else spec.name


# ---------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------


def base_identity(base: str | Path) -> str:
    """What a base contributes to a hash: a base preset's folder name (it holds the build's hash), or a
    folder's path and config."""
    from loralab.models.load import resolve_base

    path = resolve_base(base)
    config = (path / "config.json").read_text() if (path / "config.json").is_file() else ""
    return f"{path.name}:{config_hash([str(path.resolve()), config])}"


def _file_hash(path: Path, cache: dict[Path, str]) -> str:
    if path not in cache:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        cache[path] = digest.hexdigest()
    return cache[path]


def resolve_spec_base(spec: ExperimentSpec, name: str, log: Callable[[str], None] = print) -> str:
    """What a cell's base `name` loads: a built-in or imported base's name or a folder, as written; a base
    step (`kind: arithmetic`) is its cached folder, trained here first when missing."""
    entry = spec.base_entry(name)
    if not isinstance(entry, ArithmeticBase):
        return entry
    from loralab.gsm.arithmetic import ensure_arithmetic_base
    from loralab.models.load import resolve_base

    return str(ensure_arithmetic_base(resolve_base(entry.source), entry.arithmetic(), log))


def plan(
    spec: ExperimentSpec,
    workdir: Path,
    scale: str | None = None,
    on_build: Callable[[DatasetJob], None] | None = None,
    log: Callable[[str], None] = print,
) -> Plan:
    """Every job the spec needs, deduplicated by content.

    Datasets and base steps are built here when missing (`on_build` is told first of a dataset, `log` of
    a base): an expert's hash is that of its training files' bytes, so two setups whose mixtures coincide
    (setup-0's LoRA 1 and setup-5's) share one expert."""
    workdir = Path(workdir)
    hashes: dict[Path, str] = {}
    datasets: dict[str, DatasetJob] = {}
    experts: dict[str, ExpertJob] = {}
    cells: list[CellJob] = []
    controls: list[CellJob] = []
    bases: dict[str, str] = {}
    identities: dict[str, str] = {}
    for cell in expand(spec):
        data_keys = _plan_datasets(cell, workdir, datasets, on_build)  # first: seconds, and checks inputs
        if cell.base not in bases:
            bases[cell.base] = resolve_spec_base(cell.spec, cell.base, log)
            identities[cell.base] = base_identity(bases[cell.base])
        base_id = identities[cell.base]
        cell = replace(cell, base=bases[cell.base])
        expert_keys = _plan_experts(cell, base_id, data_keys, workdir, experts, hashes)
        job = _plan_cell(cell, base_id, data_keys, expert_keys, workdir)
        refs = []
        for ctl in control_cells(cell):
            keys = _plan_experts(ctl, base_id, data_keys, workdir, experts, hashes)
            control = _plan_cell(ctl, base_id, data_keys, keys, workdir)
            refs.append({**control.record["control"], "key": control.key})
            controls.append(control)
        job.record["controls"] = refs
        cells.append(job)
    # a control that is also a cell of the spec (Table 6's oracle alone on ac_cot) is evaluated once
    have = {c.key for c in cells}
    for control in controls:
        if control.key not in have:
            have.add(control.key)
            cells.append(control)
    return Plan(run_name(spec, scale), workdir, datasets, experts, cells, bases)


def _plan_datasets(
    cell: Cell,
    workdir: Path,
    datasets: dict[str, DatasetJob],
    on_build: Callable[[DatasetJob], None] | None,
) -> dict[str, DatasetJob]:
    """The cell's datasets by spec name; each new one is added to `datasets` and built when missing."""
    data_keys: dict[str, DatasetJob] = {}
    for name, data in cell.spec.datasets.items():
        seed = cell.seed if data.seed is None else data.seed
        resolved = {**data.model_dump(), "seed": seed}
        kind = DATASETS[data.kind]
        key = config_hash({"spec": resolved, "generator": kind.generator})
        label = kind.label(data, seed)
        job = DatasetJob(key, label, resolved, workdir / "datasets" / f"{label}-{key}")
        if key not in datasets:
            datasets[key] = job
            if not job.done():
                if on_build:
                    on_build(job)
                try:
                    build_dataset(job)
                except ValueError as exc:  # sizes the generator cannot satisfy
                    raise LoralabError(f"datasets.{name} ({label}): {exc}") from None
        data_keys[name] = datasets[key]
    return data_keys


def _plan_experts(
    cell: Cell,
    base_id: str,
    data_keys: dict[str, DatasetJob],
    workdir: Path,
    experts: dict[str, ExpertJob],
    hashes: dict[Path, str],
) -> list[str]:
    """The keys of the cell's library members, in library order; each new expert is added to `experts`."""
    s = cell.spec
    keys = []
    for member in cell.members:
        expert = s.experts[member]
        config = expert.lora.model_copy(update={"seed": cell.seed}).model_dump()
        files = tuple(data_keys[p.dataset].path / p.filename for p in expert.train)
        content = [_file_hash(f, hashes) for f in files]
        key = config_hash({"base": base_id, "train": content, "lora": config})
        job = ExpertJob(
            key,
            member,
            cell.base,
            files,
            config,
            tuple(dict.fromkeys(data_keys[p.dataset].key for p in expert.train)),
            _expert_folder(workdir, member, key),
        )
        experts.setdefault(key, job)
        keys.append(key)
    return keys


def _expert_folder(workdir: Path, member: str, key: str) -> Path:
    """`experts/MEMBER-KEY`, or a finished expert of the same key trained under another spec's name (the
    key is the hash of base, training bytes and recipe, so `hop1` of one spec is `lora1` of another)."""
    folder = workdir / "experts" / f"{member}-{key}"
    if not (folder / META).is_file():
        for other in sorted((workdir / "experts").glob(f"*-{key}")):
            if (other / META).is_file():
                return other
    return folder


def _plan_cell(
    cell: Cell, base_id: str, data_keys: dict[str, DatasetJob], expert_keys: list[str], workdir: Path
) -> CellJob:
    """The evaluation job of one cell, keyed by what determines its numbers."""
    s = cell.spec
    ev = cell.evaluation
    data_job = data_keys[ev.dataset]
    file = eval_file(ev, s.datasets[ev.dataset])
    eval_path = data_job.path / file
    if ev.triplets != "all":
        eval_path = _subset(workdir, data_job, file, ev.triplets, with_retention=True) / file
    options = {
        k: str(_subset(workdir, data_keys[v["dataset"]], v["file"], v.get("triplets", "all")) / v["file"])
        if isinstance(v, dict)
        else v
        for k, v in cell.method.options.items()
    }
    evaluator = DATASETS[s.datasets[ev.dataset].kind].evaluator
    decode = (s.decode or DecodeConfig()).model_dump() if evaluator == "gsm" else None
    max_new = decode["max_new_tokens"] if decode else MAX_NEW_TOKENS[ev.prompting]
    what = {
        "base": base_id,
        "experts": expert_keys,
        "method": cell.method.name,
        "options": {
            k: [data_keys[v["dataset"]].key, v["file"], v.get("triplets", "all")]
            if isinstance(v, dict)
            else v
            for k, v in cell.method.options.items()
        },
        "data": [data_job.key, file, ev.triplets],
        "decoding": {"max_new_tokens": max_new, "batch": EVAL_BATCH, "evaluator": EVALUATOR_VERSION},
    }
    if graph_hops(s, ev) is not None:  # a graph composition: scored with its relations' retention since
        what["retention"] = GRAPH_RETENTION  # graph-1; cells stored before it had none, so they rerun
    if decode is not None:  # a GSM cell: its prompt style, decoding and sandbox limits, its evaluator
        what["decoding"] = {
            "prompt": ev.prompting,
            **decode,
            "batch": EVAL_BATCH,
            "evaluator": EVALUATORS[evaluator].version,
        }
    record = {
        "experiment": s.name,
        "point": cell.point,
        "seed": cell.seed,
        "library": cell.library,
        "members": cell.members,
        "roles": {m: role_of(s, m, ev) for m in cell.members},
        "targets": {m: s.experts[m].lora.targets for m in cell.members},
        "method": cell.method.name,
        "options": cell.method.options,
        "evaluation": {**ev.model_dump(), "file": file},
        "datasets": {k: d.spec for k, d in data_keys.items()},
    }
    if "retention" in what:  # a graph composition's roles and retention (a plan without it predates them)
        record["retention"] = what["retention"]
    if cell.control is not None:
        record["control"] = asdict(cell.control)
    if evaluator != "twohop":
        record["evaluator"] = evaluator
    return CellJob(
        config_hash(what, 16),
        cell.base,
        eval_path,
        data_job.key,
        tuple(expert_keys),
        cell.method.name,
        options,
        cell.library,
        max_new,
        record,
        evaluator,
        ev.prompting,
        decode,
    )


def _subset(workdir: Path, data: DatasetJob, file: str, triplets: str, with_retention: bool = False) -> Path:
    """A folder with `file` of a dataset cut to the first or second half of its triplet ids (and, for a
    two-hop evaluation file, its one-hop siblings cut alike, for retention); written once, atomically."""
    from loralab.evaluation.retention import retention_files
    from loralab.worlds.jsonl import read_jsonl, write_jsonl

    if triplets == "all":
        return data.path
    files = [data.path / file]
    if with_retention:
        files += retention_files(data.path / file)
    names = [f.name for f in files]
    key = config_hash({"dataset": data.key, "files": names, "triplets": triplets})
    folder = workdir / "subsets" / f"{data.label}-{triplets}-{key}"
    if (folder / META).is_file():
        return folder
    with atomic_dir(folder, overwrite=True) as tmp:
        for f in files:
            rows = read_jsonl(f)
            if any("triplet" not in r for r in rows):
                raise LoralabError(f"{f}: rows without a triplet id cannot be cut into halves")
            ids = sorted({r["triplet"] for r in rows})
            first = set(ids[: (len(ids) + 1) // 2])
            keep = [r for r in rows if (r["triplet"] in first) == (triplets == "first-half")]
            write_jsonl(tmp / f.name, keep)
        meta = read_json(data.path / META)
        write_json(tmp / META, {"kind": "subset", "of": data.path.name, "triplets": triplets, **meta})
    return folder


# ---------------------------------------------------------------------------
# Jobs (module-level functions: Ray ships them to workers by name)
# ---------------------------------------------------------------------------


def build_dataset(job: DatasetJob) -> Path:
    """Write a dataset job's folder with its kind's builder (`DATASETS`)."""
    DATASETS[job.spec["kind"]].build(job.path, job.spec)
    return job.path


def train_job(job: ExpertJob, threads: int | None = None) -> Path:
    from loralab.experts.train import train_expert

    if threads:
        import torch

        torch.set_num_threads(threads)
    return train_expert(
        job.base,
        list(job.files),
        job.path,
        ExpertConfig(**job.config),
        job.name,
        overwrite=True,
        option=lambda field: f"experts.{job.name}.lora.{field}",
    )


def diagnose_job(
    p: Plan, job: CellJob, rows: list[dict[str, Any]], parts: tuple[str, ...] | list[str]
) -> Path | None:
    """The cell's `loralab.diagnose` parts, measured on its own outputs `rows`, into
    WORKDIR/diagnostics/CELL_KEY/ (`loralab.diagnose.cell`); both executors call it."""
    from loralab.diagnose.cell import diagnose_cell  # torch and the combination stack: loaded when used

    paths = [p.experts[k].path for k in job.experts]
    folder = p.workdir / "diagnostics" / job.key
    return diagnose_cell(folder, job.base, paths, job.method, job.options, job.data, rows, parts)


def stale_diagnostics(p: Plan, parts: Sequence[str]) -> list[CellJob]:
    """The stored cells of `p` that have something to diagnose but no diagnostics with `parts` measured by
    this version of `loralab.diagnose` (evaluated with `--diagnostics none`, or diagnosed before a change)."""
    from loralab.diagnose.cell import current, diagnosable

    if not parts:
        return []
    have = stored(p)
    return [
        c
        for c in p.cells
        if c.key in have
        and diagnosable([p.experts[k].path for k in c.experts], c.method)
        and not current(p.workdir / "diagnostics" / c.key, parts)
    ]


def stored_rows(p: Plan, job: CellJob) -> list[dict[str, Any]]:
    """The example records a stored cell was evaluated on, as the evaluator returned them (`id`, not the
    store's `example_id`)."""
    from loralab.experiments.store import connect, examples, stored_keys

    con = connect(p.db, create=False)
    try:
        found = examples(con, stored_keys(con)[job.key])
    finally:
        con.close()
    return [{**{k: v for k, v in r.items() if k != "example_id"}, "id": r["example_id"]} for r in found]


def evaluate_job(
    job: CellJob, run: str, expert_paths: list[Path], threads: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from loralab.experiments.cell import evaluate_cell

    if threads:
        import torch

        torch.set_num_threads(threads)
    cell, rows, _ = evaluate_cell(
        job.base,
        job.data,
        run,
        expert_paths,
        job.method,
        job.options,
        job.library,
        job.max_new_tokens,
        EVAL_BATCH,
        method_label=job.method,
        evaluator=job.evaluator,
        prompt=job.prompt,
        decode=job.decode,
    )
    cell["config"]["cell"] = job.record
    return cell, rows


def stored(plan: Plan) -> set[str]:
    """Keys of this plan's cells already in the store."""
    from loralab.experiments.store import connect, stored_keys

    if not plan.db.is_file():
        return set()
    con = connect(plan.db)
    try:
        have = stored_keys(con)
    finally:
        con.close()
    return {c.key for c in plan.cells if c.key in have}


def store_cell(plan: Plan, job: CellJob, cell: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    from loralab.experiments.store import add_cell, connect

    con = connect(plan.db)
    try:
        add_cell(con, cell, rows, key=job.key)
    finally:
        con.close()


def what(job: CellJob) -> str:
    """``uniform on 2-combination``; a control cell: ``control: lora1 alone on ab.test.jsonl``; a GSM cell
    also its prompt style and file."""
    if "control" in job.record:
        return f"control: {job.library} on {job.record['evaluation']['file']}"
    if job.evaluator != "twohop":  # ``uniform on cot-attention: tir on p2.test.jsonl``
        return f"{job.method} on {job.library}: {job.prompt} on {job.record['evaluation']['file']}"
    return f"{job.method} on {job.library}"


def cell_where(job: CellJob) -> str:
    point = job.record.get("point") or {}
    parts = [str(v) for v in point.values()] + [f"seed {job.record['seed']}"]
    return ", ".join(parts)


def read_run_meta(folder: Path) -> dict[str, Any]:
    """A run folder's meta.json ({} when there is none): an object whose `sessions` is a list of objects, each
    with a number of `seconds` once the session ended. Anything else is a one-line error naming the file."""
    path = Path(folder) / META
    if not path.is_file():
        return {}
    meta = read_json_object(path)
    sessions = meta.setdefault("sessions", [])
    fine = isinstance(sessions, list) and all(
        isinstance(s, dict)
        and (
            "seconds" not in s
            or (isinstance(s["seconds"], int | float) and not isinstance(s["seconds"], bool))
        )
        for s in sessions
    )
    if not fine:
        raise LoralabError(
            f"{path}: not a run's metadata (sessions must be a list of objects with numeric seconds); "
            "delete it to rerun (results are kept)"
        )
    return meta


def load_plan(folder: Path) -> Plan:
    """The plan a run wrote (for `loralab status` and `loralab report`)."""
    folder = Path(folder)
    path = folder / "plan.json"
    if not path.is_file():
        raise LoralabError(f"{folder}: not a run folder (no plan.json; runs live in WORKDIR/runs/NAME)")
    raw = read_json_object(path)
    workdir = folder.resolve().parent.parent
    if not isinstance(raw.get("run"), str) or not raw["run"]:
        raise LoralabError(f"{path}: not a plan written by this loralab (no run name)")
    for part in ("datasets", "experts", "cells"):  # a run always plans at least one cell
        if not isinstance(raw.get(part), list) or (part == "cells" and not raw[part]):
            raise LoralabError(f"{path}: not a plan written by this loralab ({part!r} is not a list of jobs)")
    try:
        datasets = {
            d["key"]: DatasetJob(d["key"], d["label"], d["spec"], Path(d["path"])) for d in raw["datasets"]
        }
        experts = {
            e["key"]: ExpertJob(
                e["key"],
                e["name"],
                e["base"],
                tuple(Path(f) for f in e["files"]),
                e["config"],
                tuple(e["datasets"]),
                Path(e["path"]),
            )
            for e in raw["experts"]
        }
        cells = [
            CellJob(
                c["key"],
                c["base"],
                Path(c["data"]),
                c["dataset"],
                tuple(c["experts"]),
                c["method"],
                c["options"],
                c["library"],
                c["max_new_tokens"],
                c["record"],
                c.get("evaluator", "twohop"),
                c.get("prompt", "cot"),
                c.get("decode"),
            )
            for c in raw["cells"]
        ]
        if not all(isinstance(c.record, dict) and isinstance(c.options, dict) for c in cells):
            raise TypeError("a cell's record or options is not an object")
        return Plan(raw["run"], workdir, datasets, experts, cells, dict(raw.get("bases", {})))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LoralabError(f"{path}: not a plan written by this loralab ({exc})") from None
