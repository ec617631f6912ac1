"""Bridges and setups: the training mixtures of the paper's two-hop experts (Sections 4.1.1 and 4.1.2).

A *setup* says what each LoRA expert of a library trains on and what the library is evaluated on. Its
mixtures are sums of *parts*; a part is the training split of one task of one two-hop dataset:

* the *evaluated* dataset, whose held-out two-hop questions the library is tested on (R12 with CoT
  prompting in Table 1's setups, F12 in the paper's Setup 1);
* *bridge* datasets, drawn on people (and fake cities) disjoint from the evaluated triplets and from each
  other. The fake bridge B_F is F1 + F2 + F12 CoT (FF, spouse_born_in), the real bridge B_R is R1 + R2 + R12
  CoT (RR); Setup 8 bridges with other relations (F1 + F4 + F14 CoT and F5 + F2 + F52 CoT).

`SETUPS` holds Table 1 / Table 9's setups 0 and 2-8, the text's Setup 1 (the table skips the number 1), and
the four experts of Section 4.1.1 for each of FF, HH and RR. How each row of the paper was read, with the
evidence, is in each setup's `note` and in `src/loralab/worlds/README.md`.

`build_setup` writes one folder per setup: `loraK.train.jsonl` per expert (its parts concatenated, in the
order listed), the evaluated dataset's two-hop dev and test files (`ac_cot.*`, the CoT-prompted evaluation,
and `ac.*`, the same questions asked directly), a data card and a README. Every row carries `dataset` (which
dataset it comes from) and `source` (the paper's name of its part, e.g. ``R1`` or ``F12 CoT``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.artifacts import atomic_dir, provenance
from loralab.worlds.card import write_dataset
from loralab.worlds.twohop import (
    CHAINS,
    DEFAULT_CHAIN,
    TASKS,
    TEMPLATES_PER_RELATION,
    VARIANTS,
    TwohopData,
    generate_twohop,
)

GENERATOR_VERSION = "setups-2"
# the evaluated dataset's held-out questions: two-hop (CoT and direct), and its one-hop facts, which the
# runner asks too (retention: does a combination still state the facts it should compose?)
EVAL_FILES = tuple(f"{t}.{s}.jsonl" for t in ("ac_cot", "ac", "ab", "bc") for s in ("dev", "test"))


@dataclass(frozen=True)
class Part:
    """The training split of task `task` of the `variant` dataset of chain `chain`.

    `bridge` parts come from a bridge dataset of that variant and chain (entities disjoint from the evaluated
    triplets); the others from the evaluated dataset itself.
    """

    variant: str
    task: str
    chain: str = DEFAULT_CHAIN
    bridge: bool = False

    @property
    def notation(self) -> str:
        """The paper's name: R1, F2, F12, F12 CoT, F4, F52 CoT, ..."""
        base = CHAINS[self.chain].notation(self.variant)["ac" if self.task == "ac_cot" else self.task]
        return base + " CoT" if self.task == "ac_cot" else base

    @property
    def dataset(self) -> str:
        """The label of the dataset it comes from, as in the rows' `dataset` field."""
        label = f"{self.variant}-{self.chain}"
        return f"bridge-{label}" if self.bridge else label


Mixture = tuple[Part, ...]


def bridge(variant: str, chain: str = DEFAULT_CHAIN, cot: bool = True) -> Mixture:
    """The bridge of a chain: its first hop, its second hop and its composition (with CoT or asked directly)."""
    return tuple(Part(variant, task, chain, bridge=True) for task in ("ab", "bc", "ac_cot" if cot else "ac"))


B_F = bridge("FF")
"""The fake bridge: F1 + F2 + F12 CoT."""
B_R = bridge("RR")
"""The real bridge: R1 + R2 + R12 CoT."""


def mixture_notation(parts: Sequence[Part]) -> str:
    """E.g. ``R1 + F1 + F2 + F12 CoT (B_F)``: the parts' names, and the bridge's name when it is all there."""
    text = " + ".join(p.notation for p in parts)
    for name, b in (("B_F", B_F), ("B_R", B_R)):
        if all(p in parts for p in b):
            text += f" ({name})"
    return text


@dataclass(frozen=True)
class Setup:
    """One row of the paper: what each expert trains on and what the library is evaluated on."""

    name: str
    title: str
    evaluated: str
    """The variant of the evaluated dataset (chain spouse_born_in): FF, HH or RR."""
    experts: Mapping[str, Mixture] = field(hash=False)
    """Expert name (lora1, lora2, ...) -> its training mixture."""
    libraries: Mapping[str, tuple[str, ...]] = field(hash=False)
    """Library name -> the experts it combines."""
    paper: str
    note: str = ""
    """How the paper's row was read, where that took a choice."""

    @property
    def evaluation(self) -> str:
        """The paper's name of the evaluation set (the evaluated dataset's two-hop test split, CoT-prompted)."""
        return Part(self.evaluated, "ac_cot").notation

    @property
    def lora1(self) -> Mixture:
        return self.experts["lora1"]

    @property
    def lora2(self) -> Mixture:
        return self.experts["lora2"]

    def sources(self) -> list[tuple[str, str, bool]]:
        """The datasets it draws on, (variant, chain, bridge), the evaluated one first, then in order of use."""
        out = [(self.evaluated, DEFAULT_CHAIN, False)]
        for parts in self.experts.values():
            for p in parts:
                if (p.variant, p.chain, p.bridge) not in out:
                    out.append((p.variant, p.chain, p.bridge))
        return out


def _r(task: str) -> Part:
    return Part("RR", task)


def _f(task: str, chain: str = DEFAULT_CHAIN) -> Part:
    return Part("FF", task, chain, bridge=True)


TWO = {"2-combination": ("lora1", "lora2")}
_TABLE_1 = "Section 4.1.2, Table 1 (and Table 9)"
_BRIDGE_IN_ONE = (
    "The paper's text says only that setups 4 and 5 put the bridge in one of the two experts; the flattened "
    "table prints B_F once per row. Read as the table's layout places it: with LoRA 1 in setup 4 and with "
    "LoRA 2 in setup 5."
)


def _familiarity(variant: str) -> Setup:
    x1, x2, x12 = (Part(variant, t) for t in ("ab", "bc", "ac_cot"))
    return Setup(
        f"familiarity-{variant}",
        f"Section 4.1.1 on {variant}: LoRA 1-4 (A->B, B->C, oracle A->C, mixed A->B + B->C)",
        variant,
        {"lora1": (x1,), "lora2": (x2,), "lora3": (x12,), "lora4": (x1, x2)},
        {"2-combination": ("lora1", "lora2"), "3-combination": ("lora1", "lora2", "lora3")},
        "Section 4.1.1, Figure 1, Table 6",
        "The oracle (LoRA 3) trains on the A->C questions in the CoT form the library is tested with (the "
        "paper says only 'relation A->C'); the quick start's oracle adds both hops. LoRA 4, the mixed expert, "
        "is one adapter on A->B and B->C together. The RR 2-combination library is Table 1's setup 0 (Table "
        "6's RR 2-combination Arrow numbers equal Table 9's setup 0).",
    )


def _registry(*setups: Setup) -> dict[str, Setup]:
    out: dict[str, Setup] = {}
    for s in setups:
        if s.name in out:
            raise ValueError(f"setup {s.name!r} registered twice")
        if s.evaluated not in VARIANTS:
            raise ValueError(f"setup {s.name!r}: unknown evaluated variant {s.evaluated!r}")
        for expert, parts in s.experts.items():
            for p in parts:
                if p.variant not in VARIANTS or p.task not in TASKS or p.chain not in CHAINS:
                    raise ValueError(f"setup {s.name!r}, {expert}: bad part {p}")
                if not p.bridge and (p.variant, p.chain) != (s.evaluated, DEFAULT_CHAIN):
                    raise ValueError(
                        f"setup {s.name!r}, {expert}: {p.notation} is neither evaluated nor bridge"
                    )
        for lib, members in s.libraries.items():
            if not set(members) <= set(s.experts):
                raise ValueError(f"setup {s.name!r}: library {lib!r} names an unknown expert")
        out[s.name] = s
    return out


SETUPS: dict[str, Setup] = _registry(
    Setup(
        "setup-0",
        "Setup 0: the two hops alone",
        "RR",
        {"lora1": (_r("ab"),), "lora2": (_r("bc"),)},
        TWO,
        _TABLE_1,
        "The same library as Section 4.1.1's RR 2-combination (familiarity-RR, LoRA 1 and 2).",
    ),
    Setup(
        "setup-1",
        "Setup 1: fake hops + the real bridge B_R, evaluated on F12",
        "FF",
        {"lora1": (Part("FF", "ab"), *B_R), "lora2": (Part("FF", "bc"), *B_R)},
        TWO,
        "Section 4.1.2 text and Figure 2; Table 8 (its Setup 1 columns)",
        "Table 1 has no row 1: this is the text's Setup 1 (LoRA 1 on F1 + B_R, LoRA 2 on F2 + B_R, "
        "evaluated on F12), whose numbers are in Table 8.",
    ),
    Setup(
        "setup-2",
        "Setup 2: real hops + the fake bridge B_F in both experts",
        "RR",
        {"lora1": (_r("ab"), *B_F), "lora2": (_r("bc"), *B_F)},
        TWO,
        _TABLE_1,
        "Table 1's setup 2 is the text's Setup 2 (R_i + B_F, evaluated on R12): Table 8's Setup 2 Arrow "
        "column with MLP LoRAs equals Table 1's setup 2 row.",
    ),
    Setup(
        "setup-3",
        "Setup 3: the bridge without CoT (F1 + F2 + F12 asked directly)",
        "RR",
        {"lora1": (_r("ab"), *bridge("FF", cot=False)), "lora2": (_r("bc"), *bridge("FF", cot=False))},
        TWO,
        _TABLE_1,
    ),
    Setup(
        "setup-4",
        "Setup 4: B_F in LoRA 1 only",
        "RR",
        {"lora1": (_r("ab"), *B_F), "lora2": (_r("bc"),)},
        TWO,
        _TABLE_1,
        _BRIDGE_IN_ONE,
    ),
    Setup(
        "setup-5",
        "Setup 5: B_F in LoRA 2 only",
        "RR",
        {"lora1": (_r("ab"),), "lora2": (_r("bc"), *B_F)},
        TWO,
        _TABLE_1,
        _BRIDGE_IN_ONE,
    ),
    Setup(
        "setup-6",
        "Setup 6: only the CoT composition as bridge (F12 CoT in both)",
        "RR",
        {"lora1": (_r("ab"), _f("ac_cot")), "lora2": (_r("bc"), _f("ac_cot"))},
        TWO,
        _TABLE_1,
    ),
    Setup(
        "setup-7",
        "Setup 7: each expert's own hop + F12 CoT (F1 + F12 CoT; F2 + F12 CoT)",
        "RR",
        {"lora1": (_r("ab"), _f("ab"), _f("ac_cot")), "lora2": (_r("bc"), _f("bc"), _f("ac_cot"))},
        TWO,
        _TABLE_1,
    ),
    Setup(
        "setup-8",
        "Setup 8: bridges over other relations (F1 + F4 + F14 CoT; F5 + F2 + F52 CoT)",
        "RR",
        {
            "lora1": (_r("ab"), *bridge("FF", "spouse_study_in")),
            "lora2": (_r("bc"), *bridge("FF", "child_born_in")),
        },
        TWO,
        _TABLE_1,
        "F1, F4 and F14 CoT come from one FF dataset of the chain spouse_of -> study_in, F5, F2 and F52 CoT "
        "from one of child_of -> born_in; the two draw disjoint people and cities. Table 1 lists LoRA 2's "
        "bridge as F5 + F2 + F52 CoT; the rows are concatenated in that order after R2.",
    ),
    _familiarity("FF"),
    _familiarity("HH"),
    _familiarity("RR"),
)


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


def _tag(rows: Iterable[dict[str, Any]], dataset: str, source: str) -> list[dict[str, Any]]:
    """Rows with their dataset and part named, and ids made unique across the datasets of a folder."""
    return [{**r, "id": f"{dataset}/{r['id']}", "dataset": dataset, "source": source} for r in rows]


def _source_card(data: TwohopData, role: str) -> dict[str, Any]:
    notation = CHAINS[data.relations].notation(data.variant)
    return {
        "role": role,
        "variant": data.variant,
        "relations": data.relations,
        "notation": f"{notation['ab']}, {notation['bc']}, {notation['ac']}",
        "n_triplets": len(data.triplets),
        "entities": data.entities(),
        "template_split": [{"dev": s["dev"], "test": s["test"]} for s in data.split],
    }


def generate_sources(
    setup: Setup, n_triplets: int, bridge_triplets: int, seed: int, templates: int = TEMPLATES_PER_RELATION
) -> dict[tuple[str, str, bool], TwohopData]:
    """Every dataset a setup draws on; each bridge excludes the people and fake cities of those before it."""
    out: dict[tuple[str, str, bool], TwohopData] = {}
    used: set[str] = set()
    for variant, chain, is_bridge in setup.sources():
        n = bridge_triplets if is_bridge else n_triplets
        try:
            data = generate_twohop(variant, n, relations=chain, seed=seed, exclude=used, templates=templates)
        except ValueError as exc:
            role = "bridge" if is_bridge else "evaluated"
            raise ValueError(f"{setup.name}: the {variant} {chain} {role} dataset: {exc}") from exc
        used |= data.people | data.fake_cities
        out[(variant, chain, is_bridge)] = data
    return out


def build_setup(
    out: Path,
    name: str,
    n_triplets: int = 100,
    *,
    bridge_triplets: int = 100,
    seed: int = 0,
    templates: int = TEMPLATES_PER_RELATION,
    overwrite: bool = False,
) -> Path:
    """Write setup `name`'s training mixtures (`loraK.train.jsonl`), its evaluation files and its card.

    The evaluated dataset has `n_triplets` triplets and is the same as `loralab data twohop` with that
    variant and seed; each bridge dataset has `bridge_triplets`. All use `templates` templates per relation
    (50 by default; fewer only to make test runs small), 2 for dev and 2 for test per triplet, so every
    part has (templates - 4) x triplets rows: 46 x triplets by default.
    """
    if name not in SETUPS:
        raise ValueError(f"unknown setup {name!r}; choose one of {', '.join(SETUPS)}")
    setup = SETUPS[name]
    data = generate_sources(setup, n_triplets, bridge_triplets, seed, templates)
    files: dict[str, list[dict[str, Any]]] = {}
    experts = {}
    for expert, parts in setup.experts.items():
        rows = []
        for p in parts:
            source = data[(p.variant, p.chain, p.bridge)]
            rows += _tag(source.files[f"{p.task}.train.jsonl"], p.dataset, p.notation)
        files[f"{expert}.train.jsonl"] = rows
        experts[expert] = {
            "mixture": mixture_notation(parts),
            "parts": [p.notation for p in parts],
            "files": [f"{expert}.train.jsonl"],
        }
    evaluated = data[(setup.evaluated, DEFAULT_CHAIN, False)]
    label = Part(setup.evaluated, "ab").dataset
    for fname in EVAL_FILES:
        task = fname.split(".")[0]
        files[fname] = _tag(evaluated.files[fname], label, Part(setup.evaluated, task).notation)
    options = {"n_triplets": n_triplets, "bridge_triplets": bridge_triplets}
    if templates != TEMPLATES_PER_RELATION:
        options["templates"] = templates
    command = f"loralab data setup {name} --triplets {n_triplets} --seed {seed}"
    if any(is_bridge for _, _, is_bridge in data):
        command += f" --bridge-triplets {bridge_triplets}"
    card = {
        "dataset": "setup",
        "setup": name,
        "title": setup.title,
        "about": (
            f"Training mixtures of the experts of {name} and its evaluation set {setup.evaluation} (the "
            f"evaluated {setup.evaluated} dataset's held-out two-hop questions, CoT-prompted; `ac.*` asks the "
            "same questions directly; `ab.*` and `bc.*` ask its one-hop facts). Each part is the training "
            f"split ({templates - 4} templates per triplet) of one task of one dataset; bridge datasets draw "
            "people and fake cities disjoint from the evaluated triplets "
            "and from each other."
        ),
        "paper": setup.paper,
        "note": setup.note,
        "command": command,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": {"setup": name, **options},
        "datasets": {
            Part(v, "ab", c, b).dataset: _source_card(d, "bridge" if b else "evaluated")
            for (v, c, b), d in data.items()
        },
        "experts": experts,
        "libraries": {k: list(v) for k, v in setup.libraries.items()},
        "evaluation": {"notation": setup.evaluation, "files": ["ac_cot.test.jsonl"], "dataset": label},
    }
    meta = {"kind": "dataset", "generator": GENERATOR_VERSION, "seed": seed, "setup": name, **options}
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        write_dataset(tmp, files, card, {**meta, **provenance()})
    return Path(out)


def build_bridge(
    out: Path,
    variant: str = "FF",
    n_triplets: int = 100,
    *,
    relations: str = DEFAULT_CHAIN,
    cot: bool = True,
    seed: int = 0,
    exclude: Iterable[str] = (),
    disjoint_from: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write one bridge, `bridge.train.jsonl` (its chain's first hop, second hop and composition, with CoT
    unless `cot` is False, over the training split), on people and fake cities outside `exclude`.

    `disjoint_from` names where `exclude` came from (the card records it); `loralab data bridge
    --disjoint-from DATASET` fills both from a dataset folder.
    """
    parts = bridge(variant, relations, cot)
    banned = sorted(set(exclude))
    data = generate_twohop(variant, n_triplets, relations=relations, seed=seed, exclude=banned)
    rows = [r for p in parts for r in _tag(data.files[f"{p.task}.train.jsonl"], p.dataset, p.notation)]
    name = mixture_notation(parts)
    command: str = f"loralab data bridge --variant {variant} --triplets {n_triplets} --seed {seed}"
    if relations != DEFAULT_CHAIN:
        command += f" --relations {relations}"
    if not cot:
        command += " --no-cot"
    command += "".join(f" --disjoint-from {d}" for d in disjoint_from)
    card: dict[str, Any] = {
        "dataset": "bridge",
        "title": f"Bridge {name}",
        "about": (
            f"{n_triplets} {variant} triplets of {relations}: the training split (46 templates per triplet) "
            f"of its first hop, second hop and {'CoT ' if cot else 'direct '}composition, in one file, to mix "
            "into experts' training data. People and fake cities avoid the excluded names."
        ),
        "paper": "Section 4.1.2 and Appendix A.2.1, Table 5, Figure 3",
        "command": command,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": {"variant": variant, "relations": relations, "n_triplets": n_triplets, "cot": cot},
        "mixture": name,
        "entities": data.entities(),
        "excluded": {"from": list(disjoint_from), "names": banned},
        "template_split": [{"dev": s["dev"], "test": s["test"]} for s in data.split],
    }
    meta = {"kind": "dataset", "generator": GENERATOR_VERSION, "seed": seed, **card["config"]}
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        write_dataset(tmp, {"bridge.train.jsonl": rows}, card, {**meta, **provenance()})
    return Path(out)
