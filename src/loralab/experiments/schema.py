"""The types of an experiment spec (`loralab.experiments.spec` loads, checks and expands them): what a spec
file may hold, key by key, and the cells it expands to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from loralab.experiments.datasets import GraphData, GsmData, SetupData, TwohopData
from loralab.experts.config import SEED_LIMIT, ExpertConfig
from loralab.gsm.arithmetic import ArithmeticSpec
from loralab.gsm.evaluate import DecodeConfig

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


DatasetSpec = Annotated[TwohopData | SetupData | GraphData | GsmData, Field(discriminator="kind")]


class ArithmeticBase(ArithmeticSpec):
    """A base-model step: a built-in base trained further on generated easy arithmetic before any expert is
    trained (`loralab.gsm.arithmetic`), built once into the base cache, named by the hash of its source and
    settings, like any base. Cells call it by `name`."""

    name: str = Field(description="what the spec's cells call this base")
    kind: Literal["arithmetic"]
    source: str = Field(description="the base preset it starts from (loralab ls bases)")

    def arithmetic(self) -> ArithmeticSpec:
        """The training settings alone (what the cached base's name hashes)."""
        return ArithmeticSpec(**self.model_dump(exclude={"name", "kind", "source"}))


BaseEntry = str | ArithmeticBase


class TrainPart(_Strict):
    """One training file of an expert's mixture: a dataset's `file`, or its `task`'s training split."""

    dataset: str = Field(description="a key of `datasets`")
    file: str | None = Field(None, description="a file of that dataset, e.g. lora1.train.jsonl")
    task: str | None = Field(None, description="a task of that dataset (its TASK.train.jsonl), e.g. ab")

    @property
    def filename(self) -> str:
        return self.file or f"{self.task}.train.jsonl"


Role = Literal["hop1", "hop2", "oracle", "mixed", "none"]


class ExpertSpec(_Strict):
    """One LoRA expert: what it trains on (the parts, concatenated in order) and its LoRA settings."""

    train: list[TrainPart] = Field(min_length=1, description="the training mixture")
    lora: ExpertConfig = Field(
        default_factory=ExpertConfig, description="rank, alpha, targets, ...; the cell's seed replaces seed"
    )
    role: Role | None = Field(
        None,
        description="hop1 (A->B), hop2 (B->C), oracle (A->C), mixed (A->B and B->C) or none: which positive "
        "controls test it; None: inferred from its training files (`role_of`)",
    )


class MethodRef(_Strict):
    """A combination method of `loralab ls methods` and its options (checked against its signature)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


Triplets = Literal["all", "first-half", "second-half"]


class DataRef(_Strict):
    """A dataset's file as a method option's value (`data` of cat_learned and lorahub), optionally only the
    first or second half of its triplets (Table 10: CAT trained on half of R12, tested on the other half)."""

    dataset: str = Field(description="a key of `datasets`")
    file: str = Field(description="a file of that dataset, e.g. ac_cot.train.jsonl")
    triplets: Triplets = Field("all", description="all, or the first or second half of the triplet ids")


class Evaluation(_Strict):
    """An evaluation set: a split of a dataset's held-out questions (two-hop: A->C; gsm: P2) with a prompting
    its kind knows (two-hop: cot or direct; gsm: cot, gsm8k-8shot or tir)."""

    dataset: str = Field(description="a key of `datasets`")
    split: Literal["dev", "test"] = "test"
    prompting: str = Field("cot", description="two-hop: cot or direct; gsm: cot, gsm8k-8shot or tir")
    file: str | None = Field(None, description="another file of the dataset (then prompting says how)")
    triplets: Triplets = Field("all", description="all, or the first or second half of the triplet ids")


class Library(_Strict):
    """A library with methods (e.g. one expert alone, evaluated once with `oracle`) or evaluations of its
    own; what it leaves out is the spec's."""

    experts: list[str] = Field(description="the experts it combines; none only with method `base`")
    methods: list[MethodRef] | None = Field(
        None, min_length=1, description="used instead of the spec's methods"
    )
    evaluations: list[Evaluation] | None = Field(
        None, min_length=1, description="used instead of the spec's evaluations"
    )


class TableSpec(_Strict):
    """A table of `loralab report`: the cells of some libraries, one row per method and library, one column
    per evaluation (prompting on file); with `errors`, the per-example error analysis of the same cells."""

    name: str = Field(description="short name, e.g. table2")
    title: str = Field(description="what the table shows")
    libraries: list[str] | None = Field(None, description="keys of `libraries`; None: all")
    prompting: list[str] | None = Field(None, description="the evaluations' promptings; None: all")
    files: list[str] | None = Field(None, description="evaluated files, e.g. p2.test.jsonl; None: all")
    errors: bool = Field(False, description="also the solution and error types (GSM analysis)")


class ExperimentSpec(_Strict):
    """What an experiment compares; `expand` turns it into cells."""

    name: str = Field(
        description="the experiment's name (results are stored under it, and it names the run folder "
        "WORKDIR/runs/NAME.SCALE): letters, digits, _ and -, not starting with _ or -",
    )
    description: str = ""
    bases: list[BaseEntry] = Field(
        min_length=1,
        description="base presets, imported bases, local HF model folders or base steps ({kind: arithmetic})",
    )
    datasets: dict[str, DatasetSpec] = Field(min_length=1)
    experts: dict[str, ExpertSpec] = Field(min_length=1)
    libraries: dict[str, list[str] | Library] = Field(
        min_length=1, description="name -> the experts it combines (or {experts: [...], methods: [...]})"
    )

    def members(self, library: str) -> list[str]:
        """The experts of a library, in order."""
        lib = self.libraries[library]
        return lib.experts if isinstance(lib, Library) else lib

    def methods_of(self, library: str) -> list[MethodRef]:
        """The methods a library is evaluated with: its own, else the spec's."""
        lib = self.libraries[library]
        return lib.methods if isinstance(lib, Library) and lib.methods else self.methods

    def evaluations_of(self, library: str) -> list[Evaluation]:
        """The evaluations a library is evaluated on: its own, else the spec's."""
        lib = self.libraries[library]
        return lib.evaluations if isinstance(lib, Library) and lib.evaluations else self.evaluations

    def base_names(self) -> list[str]:
        """What cells call each base: a name or folder as written, a base step's `name`."""
        return [b if isinstance(b, str) else b.name for b in self.bases]

    def base_entry(self, name: str) -> BaseEntry:
        return self.bases[self.base_names().index(name)]

    methods: list[MethodRef] = Field(min_length=1)
    evaluations: list[Evaluation] = Field(min_length=1)
    seeds: list[Annotated[StrictInt, Field(ge=0, lt=SEED_LIMIT)]] = Field(
        [0], min_length=1, description="distinct non-negative integers below 2**32"
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="dotted path -> values; cells repeat per point of their product"
    )
    decode: DecodeConfig | None = Field(
        None, description="gsm evaluations: new tokens, TIR rounds, sandbox limits (None: their defaults)"
    )
    tables: list[TableSpec] = Field(
        default_factory=list, description="report tables (none: the experiment's layout, `report.layouts`)"
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}", name):
            raise ValueError(
                f"{name!r} is not a plain name: letters, digits, _ and - (at most 100, not starting with "
                "_ or -), because it names the run folder WORKDIR/runs/NAME.SCALE"
            )
        return name

    @field_validator("libraries", mode="before")
    @classmethod
    def _library_shape(cls, libraries: Any) -> Any:
        """One clear line for a library that is neither a list nor a mapping (the union's two errors say
        little), and for an expert listed twice in one library (it would count twice in the combination)."""
        for name, lib in libraries.items() if isinstance(libraries, dict) else ():
            if not isinstance(lib, list | dict):
                raise ValueError(
                    f"{name}: expected a list of experts ([a, b]) or {{experts: [a, b], methods: [...]}}, "
                    f"not {lib!r}"
                )
            members = lib.get("experts") if isinstance(lib, dict) else lib
            if isinstance(members, list):
                twice = sorted({str(m) for m in members if members.count(m) > 1})
                if twice:
                    raise ValueError(f"{name}: expert {twice[0]} is listed twice (it would count twice)")
        return libraries

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("the seeds must be distinct (a repeated seed would run the same cells twice)")
        return seeds


@dataclass(frozen=True)
class ControlRef:
    """What a control cell measures: one expert alone on one task's held-out questions."""

    expert: str
    role: str
    task: str  # ab, bc, ac or ac_cot; on a graph, the file's task (rel1, rel2, rel1_rel2_cot)


@dataclass(frozen=True)
class Cell:
    """One evaluation of the expanded grid: `spec` is the grid point's spec (no grid left). A control cell
    (`control_cells`) evaluates one expert alone; its `library` is ``EXPERT alone``."""

    spec: ExperimentSpec
    point: dict[str, Any]
    base: str
    library: str
    method: MethodRef
    evaluation: Evaluation
    seed: int
    control: ControlRef | None = None

    @property
    def members(self) -> list[str]:
        """The experts the cell combines, in order."""
        return [self.control.expert] if self.control else self.spec.members(self.library)
