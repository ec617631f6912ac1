"""DATASETS: the dataset kinds a spec can name (`datasets.NAME.kind`), one entry each.

An entry carries what the rest of the pipeline needs to know about a kind, so no other module dispatches on
it: its spec (the options a spec file takes, validated by pydantic), the generator version that goes into a
dataset's content key, the label of its folder, how to build it, which files it writes, the held-out
composition an evaluation reads by default, and the line `loralab ls datasets` prints. A new kind is one
spec class, one builder in `loralab.worlds` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loralab.gsm import datasets as gsm
from loralab.gsm.prompts import PROMPTS
from loralab.worlds import graph, setups, twohop


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TwohopData(_Strict):
    """The two-hop suite (`loralab data twohop`): tasks ab, bc, ac, ac_cot in train/dev/test files."""

    kind: Literal["twohop"]
    variant: str = Field("RR", description="FF, HH or RR")
    relations: str = Field("spouse_born_in", description="the chain (loralab ls datasets)")
    triplets: int = Field(100, ge=1, le=twohop.MAX_UNITS, description="(A, B, C) triplets")
    templates: int = Field(50, ge=5, le=50, description="templates per relation (the first N of 50)")
    dev_templates: int = Field(2, ge=0, description="templates per triplet held out for dev")
    test_templates: int = Field(2, ge=1, description="templates per triplet held out for test")
    seed: int | None = Field(None, description="the draw of entities; None: the cell's seed")


class SetupData(_Strict):
    """A setup's training mixtures (`loralab data setup`): loraK.train.jsonl and the ac / ac_cot eval files."""

    kind: Literal["setup"]
    setup: str = Field(description="a setup of `loralab ls setups`")
    triplets: int = Field(100, ge=1, le=twohop.MAX_UNITS, description="triplets of the evaluated dataset")
    bridge_triplets: int = Field(
        100, ge=1, le=twohop.MAX_UNITS, description="triplets of each bridge dataset"
    )
    templates: int = Field(50, ge=5, le=50, description="templates per relation (the first N of 50)")
    seed: int | None = Field(None, description="the draw of entities; None: the cell's seed")


class GraphData(_Strict):
    """The graph suite (`loralab data graph`, Appendix A.3): Rel1..Rel5, compositions, Rel1->Rel2 held out."""

    kind: Literal["graph"]
    variant: Literal["shared", "disjoint"] = "shared"
    paths: int = Field(100, ge=1, le=twohop.MAX_UNITS, description="disjoint: paths per composition")
    u1: int = Field(100, ge=1, le=twohop.MAX_UNITS, description="shared: people in U1")
    u2: int = Field(100, ge=3, le=twohop.MAX_UNITS, description="shared: people in U2")
    u3: int = Field(100, ge=6, le=twohop.MAX_UNITS, description="shared: cities in U3")
    templates: int = Field(50, ge=5, le=50, description="templates per relation (the first N of 50)")
    dev_templates: int = Field(2, ge=0, description="templates per unit held out for dev")
    test_templates: int = Field(2, ge=1, description="templates per unit held out for test")
    seed: int | None = Field(None, description="the draw of entities; None: the cell's seed")


class GsmData(_Strict):
    """The easy-to-hard GSM experiment's data (paper Section 4.2): symbolic and P1 train/test, P2 test, in
    one fine-tuning format."""

    kind: Literal["gsm"]
    format: Literal["cot", "code", "code-whole"] = Field(
        "cot", description="cot (worked solutions), code (functions up to the level) or code-whole"
    )
    source: str = Field(
        "own", description="templates: 'own' (the project's 10 families) or a folder (made absolute on load)"
    )
    train_per_template: int = Field(40, ge=1, le=40, description="training instances per template and level")
    p2_per_template: int = Field(
        2, ge=1, le=1000, description="P2 evaluation instances per template (paper: 2; at most 1000)"
    )
    seed: int | None = Field(None, description="the draw of instances; None: the cell's seed")

    @field_validator("source")
    @classmethod
    def _absolute(cls, source: str) -> str:
        """A folder is keyed by its absolute path, so one spec run from two places cannot share a key."""
        return source if source == "own" else str(Path(source).resolve())


@dataclass(frozen=True)
class DatasetKind:
    name: str
    spec: type[BaseModel]
    generator: str  # the generator's version, part of every dataset key of this kind
    label: Callable[[Any, int], str]  # (spec, seed) -> the folder's readable name
    build: Callable[[Path, dict[str, Any]], None]  # (folder, resolved spec) -> files written there
    files: Callable[[Any], set[str]]  # the JSONL files a dataset of this spec holds
    known: Callable[[Any], bool]  # whether those files are known (a setup dataset names a real setup)
    held_out: Callable[[bool], str]  # cot? -> the held-out composition's task name
    listing: Callable[[], str]  # its line in `loralab ls datasets`
    evaluator: str = "twohop"  # the `EVALUATORS` entry that scores its files
    promptings: tuple[str, ...] = ("cot", "direct")  # what an evaluation's `prompting` may be


def _twohop_label(d: Any, seed: int) -> str:
    return f"twohop-{d.variant}-{d.relations}-n{d.triplets}-t{d.templates}-s{seed}"


def _setup_label(d: Any, seed: int) -> str:
    return f"{d.setup}-n{d.triplets}-b{d.bridge_triplets}-s{seed}"


def _graph_label(d: Any, seed: int) -> str:
    size = f"p{d.paths}" if d.variant == "disjoint" else f"u{d.u1}-{d.u2}-{d.u3}"
    return f"graph-{d.variant}-{size}-t{d.templates}-s{seed}"


def _build_twohop(folder: Path, s: dict[str, Any]) -> None:
    twohop.build_twohop(
        folder,
        s["variant"],
        s["triplets"],
        relations=s["relations"],
        templates=s["templates"],
        dev_templates=s["dev_templates"],
        test_templates=s["test_templates"],
        seed=s["seed"],
        overwrite=True,
    )


def _build_setup(folder: Path, s: dict[str, Any]) -> None:
    setups.build_setup(
        folder,
        s["setup"],
        s["triplets"],
        bridge_triplets=s["bridge_triplets"],
        seed=s["seed"],
        templates=s["templates"],
        overwrite=True,
    )


def _build_graph(folder: Path, s: dict[str, Any]) -> None:
    sizes = {k: s[k] for k in ("paths", "u1", "u2", "u3", "templates", "dev_templates", "test_templates")}
    graph.build_graph(folder, s["variant"], seed=s["seed"], overwrite=True, **sizes)


def _gsm_label(d: Any, seed: int) -> str:
    source = "own" if d.source == "own" else Path(d.source).name
    return f"gsm-{source}-{d.format}-t{d.train_per_template}-p{d.p2_per_template}-s{seed}"


def _build_gsm(folder: Path, s: dict[str, Any]) -> None:
    gsm.build_experiment_data(folder, s)


def _twohop_files(d: Any) -> set[str]:
    return {f"{t}.{s}.jsonl" for t in twohop.TASKS for s in twohop.SPLITS}


def _setup_files(d: Any) -> set[str]:
    return {f"{e}.train.jsonl" for e in setups.SETUPS[d.setup].experts} | set(setups.EVAL_FILES)


def _graph_files(d: Any) -> set[str]:
    name = graph.task_name
    tasks = [name(r) for r in graph.ATOMIC] + [name(c, cot) for c in graph.TRAINING for cot in (False, True)]
    held = {f"{name(graph.HELD_OUT, cot)}.{s}.jsonl" for cot in (False, True) for s in ("dev", "test")}
    return {f"{t}.{s}.jsonl" for t in tasks for s in twohop.SPLITS} | held


def _twohop_held_out(cot: bool) -> str:
    return "ac_cot" if cot else "ac"


DATASETS: dict[str, DatasetKind] = {}


def register(kind: DatasetKind) -> None:
    if kind.name in DATASETS:
        raise ValueError(f"dataset kind {kind.name!r} registered twice")
    DATASETS[kind.name] = kind


register(
    DatasetKind(
        "twohop",
        TwohopData,
        str(twohop.GENERATOR_VERSION),
        _twohop_label,
        _build_twohop,
        _twohop_files,
        lambda d: True,
        _twohop_held_out,
        lambda: (
            f"variants {', '.join(twohop.VARIANTS)}; chains {', '.join(twohop.CHAINS)}; "
            f"tasks {', '.join(twohop.TASKS)}"
        ),
    )
)
register(
    DatasetKind(
        "setup",
        SetupData,
        str(setups.GENERATOR_VERSION),
        _setup_label,
        _build_setup,
        _setup_files,
        lambda d: d.setup in setups.SETUPS,
        _twohop_held_out,
        lambda: f"the experts' training mixtures of a setup ({len(setups.SETUPS)}: loralab ls setups)",
    )
)
register(
    DatasetKind(
        "graph",
        GraphData,
        str(graph.GENERATOR_VERSION),
        _graph_label,
        _build_graph,
        _graph_files,
        lambda d: True,
        lambda cot: graph.task_name(graph.HELD_OUT, cot),
        lambda: f"Appendix A.3: variants {', '.join(graph.GRAPH_VARIANTS)}; Rel1..Rel5, Rel1->Rel2 held out",
    )
)
register(
    DatasetKind(
        "gsm",
        GsmData,
        gsm.EXPERIMENT_VERSION,
        _gsm_label,
        _build_gsm,
        lambda d: set(gsm.EXPERIMENT_FILES),
        lambda d: True,
        lambda cot: "p2",
        lambda: (
            "Section 4.2: GSM-Symbolic levels symbolic, p1 (train, test) and p2 (test); formats "
            + ", ".join(gsm.FORMATS)
        ),
        "gsm",
        tuple(PROMPTS),
    )
)
