"""The GSM experiment's base-model step: the built-in base trained further on arithmetic (drills and word
problems, with replay of its own corpus), cached by the source base's identity and the spec like any base."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loralab.artifacts import META, cache_dir, config_hash, read_json
from loralab.errors import LoralabError

ARITHMETIC_VERSION = "arith-1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArithmeticSpec(_Strict):
    """Continued pretraining of a built-in base on generated easy arithmetic, before any expert is trained.
    The tiny base's corpus holds no arithmetic at all; see gsm/README.md for what it measured."""

    steps: int = Field(ge=1, description="optimizer steps")
    batch_size: int = Field(32, ge=1, description="packed sequences per step")
    seq_len: int = Field(256, ge=16, description="tokens per sequence")
    lr: float = Field(1e-3, gt=0, description="peak AdamW learning rate (warmup, cosine to 10%)")
    max_number: int = Field(100, ge=10, description="largest addend; products and quotients stay below ~400")
    replay: float = Field(0.25, ge=0, lt=1, description="share of documents from the base's own corpus")
    word_problems: float = Field(
        0.35, ge=0, le=1, description="share of the generated documents that are easy word problems"
    )
    documents: int = Field(20000, ge=10, description="arithmetic documents generated")
    seed: int = 0


# ----------------------------------------------------------------------------------------------------------
# The arithmetic base


def _number(rng: random.Random, top: int) -> int:
    """A small whole number, skewed the way word problems are: half one-digit, most under 30."""
    roll = rng.random()
    if roll < 0.5:
        return rng.randint(0, 9)
    if roll < 0.8:
        return rng.randint(10, min(30, top))
    return rng.randint(10, top)


def _fact(rng: random.Random, top: int) -> tuple[int, str, int, int]:
    """(a, op, b, result) with small whole numbers: sums up to 2*top, products up to 12*30."""
    op = rng.choices("+-*/", weights=(3, 3, 3, 1))[0]
    if op == "+":
        a, b = _number(rng, top), _number(rng, top)
        return a, op, b, a + b
    if op == "-":
        a, b = sorted((_number(rng, 2 * top), _number(rng, top)), reverse=True)
        return a, op, b, a - b
    x, y = rng.randint(1, 12), _number(rng, 30)
    if op == "*":
        return (x, op, y, x * y) if rng.random() < 0.5 else (y, op, x, x * y)
    return x * y, op, x, y


def _statement(a: int, op: str, b: int, c: int, rng: random.Random) -> str:
    """`a op b = c`, now and then with dollar signs as prices are written ("$12 + $3 = $15", "3 * $4 = $12")."""
    if rng.random() < 0.1:
        if op in "+-":
            return f"${a} {op} ${b} = ${c}"
        if op == "*":
            return f"{a} * ${b} = ${c}"
    return f"{a} {op} {b} = {c}"


_ITEMS = (
    "marbles",
    "stickers",
    "pencils",
    "shells",
    "stamps",
    "balloons",
    "crayons",
    "coins",
    "beads",
    "cards",
)


@dataclass(frozen=True)
class _Problem:
    """An easy word problem with its worked steps and its computation as a Python function."""

    question: str
    steps: str
    function: str
    values: dict[str, int]
    expression: str
    answer: int


def _word_problem(rng: random.Random) -> _Problem:
    """A one- or two-step word problem. Easy and generic: none of the project's own template families, and
    no three-clause chain like their P2 level."""
    from loralab.gsm.vocab import NAMES

    x, y = rng.sample(NAMES, 2)
    item = rng.choice(_ITEMS)
    a, b, n = rng.randint(2, 30), rng.randint(2, 12), rng.randint(2, 9)
    kind = rng.randrange(6)
    if kind == 0:
        q = f"{x} has {a} {item}. {y} gives {x} {b} more. How many {item} does {x} have now?"
        return _Problem(
            q, f"{x} has {a} + {b} = {a + b} {item} now.", "total", {"a": a, "b": b}, "a + b", a + b
        )
    if kind == 1:
        q = f"{x} had {a + b} {item} and lost {b} of them. How many {item} does {x} still have?"
        return _Problem(
            q, f"{x} still has {a + b} - {b} = {a} {item}.", "left", {"a": a + b, "b": b}, "a - b", a
        )
    if kind == 2:
        q = f"A shelf has {n} boxes with {b} {item} in each box. How many {item} are on the shelf?"
        steps = f"The shelf has {n} * {b} = {n * b} {item}."
        return _Problem(q, steps, "shelf", {"n": n, "b": b}, "n * b", n * b)
    if kind == 3:
        q = f"{x} puts {b * n} {item} into {b} equal piles. How many {item} are in each pile?"
        return _Problem(
            q, f"Each pile has {b * n} / {b} = {n} {item}.", "pile", {"t": b * n, "b": b}, "t // b", n
        )
    if kind == 4:
        c = rng.randint(1, a + b - 1)
        q = f"{x} collects {a} {item} and {y} collects {b}. They use {c} of them in a game. How many are not used?"
        steps = (
            f"Together they collect {a} + {b} = {a + b} {item}.\n{a + b} - {c} = {a + b - c} are not used."
        )
        return _Problem(q, steps, "unused", {"a": a, "b": b, "c": c}, "a + b - c", a + b - c)
    q = f"{x} buys {n} packs of {item} with {b} in each pack and already had {a}. How many {item} does {x} have?"
    steps = f"The packs hold {n} * {b} = {n * b} {item}.\n{x} has {n * b} + {a} = {n * b + a} {item}."
    return _Problem(q, steps, "packs", {"n": n, "b": b, "a": a}, "n * b + a", n * b + a)


def _problem_document(problem: _Problem, rng: random.Random) -> str:
    """A chat turn: half the problems answered in prose (with the CoT system prompt or none), half in code
    with its output (with the tool-integrated system prompt), as Qwen2.5-Math-Instruct answers each."""
    from loralab.gsm.prompts import COT_SYSTEM, TIR_SYSTEM
    from loralab.models.chat import IM_END, IM_START, render_turn

    final = f"#### {problem.answer}"
    if rng.random() < 0.5:
        system = COT_SYSTEM if rng.random() < 0.5 else None
        answer = f"{problem.steps}\n{final}"
    else:
        system = TIR_SYSTEM
        params = ", ".join(problem.values)
        args = ", ".join(f"{k}={v}" for k, v in problem.values.items())
        answer = (
            f"```python\ndef {problem.function}({params}):\n    return {problem.expression}\n\n\n"
            f"print({problem.function}({args}))\n```\n```output\n{problem.answer}\n```\n{final}"
        )
    head = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    return head + render_turn(problem.question, answer).rstrip("\n")


def arithmetic_documents(spec: ArithmeticSpec) -> list[str]:
    """Generated easy arithmetic: drills of one-step facts ("7 + 5 = 12"), chains whose next step starts
    from the last result, fractions of a number ("1/4 * 36 = 9"), chat turns asking for a computation and,
    a `word_problems` share of them, one- and two-step word problems in chat form, answered in prose or in
    code (`_problem_document`).
    Each document ends with the end-of-text marker."""
    from loralab.models.chat import EOT, render_turn

    rng = random.Random(f"arithmetic:{spec.seed}")
    docs = []
    for _ in range(spec.documents):
        if rng.random() < spec.word_problems:
            docs.append(_problem_document(_word_problem(rng), rng))
            continue
        kind = rng.random()
        if kind < 0.4:
            lines = [_statement(*_fact(rng, spec.max_number), rng) for _ in range(rng.randint(4, 8))]
            docs.append("\n".join(lines))
        elif kind < 0.7:
            docs.append("\n".join(_chain(rng, spec.max_number)))
        elif kind < 0.8:
            d = rng.choice((2, 3, 4, 5))
            q = rng.randint(1, 30)
            docs.append(f"1/{d} * {d * q} = {q}\n{d * q} - {q} = {d * q - q}")
        else:
            a, op, b, c = _fact(rng, spec.max_number)
            docs.append(render_turn(f"What is {a} {op} {b}?", f"{a} {op} {b} = {c}.").rstrip("\n"))
    return [d + EOT for d in docs]


def _chain(rng: random.Random, top: int) -> list[str]:
    """2-4 statements, each starting from the previous result."""
    value = rng.randint(1, top)
    lines = []
    for _ in range(rng.randint(2, 4)):
        op = rng.choices("+-*/", weights=(3, 2, 4, 1))[0]
        if op == "+":
            b = _number(rng, top)
            c = value + b
        elif op == "-":
            b = rng.randint(0, value)
            c = value - b
        elif op == "*":
            b = rng.randint(1, 4)
            c = value * b
        else:
            b = rng.choice([d for d in range(2, 7) if value % d == 0] or [1])
            c = value // b
        lines.append(_statement(value, op, b, c, rng))
        value = c
    return lines


def arithmetic_base_dir(source: Path, spec: ArithmeticSpec) -> Path:
    """Where the arithmetic-trained copy of base folder `source` is cached (never `source` itself)."""
    key = config_hash(
        {"source": _folder_identity(source), "spec": spec.model_dump(), "v": ARITHMETIC_VERSION}
    )
    return cache_dir() / "bases" / f"{source.name}-arith-{key}"


def _folder_identity(path: Path) -> str:
    meta = path / META
    stamp = read_json(meta).get("created", "") if meta.is_file() else ""
    return f"{path.resolve()}:{stamp}"


def ensure_arithmetic_base(source: Path, spec: ArithmeticSpec, log: Any = print) -> Path:
    """The built-in base `source` after `spec.steps` more steps of pretraining on arithmetic (mixed with
    its own corpus), built once into its own cache folder."""
    import torch

    from loralab.models.corpus import build_corpus
    from loralab.models.load import load_base
    from loralab.models.save import save_base
    from loralab.models.tiny import BasePreset, pretrain
    from loralab.worlds.familiar import build_world

    out = arithmetic_base_dir(source, spec)
    if (out / META).is_file():
        return out
    source_meta = read_json(source / META) if (source / META).is_file() else {}
    if source_meta.get("kind") != "base":
        raise LoralabError(f"arithmetic: {source} is not a built-in base (only those are trained further)")
    start = time.time()
    preset = BasePreset(**source_meta["config"])
    docs = arithmetic_documents(spec)
    if spec.replay:
        world = build_world(preset.n_real, preset.n_background, preset.n_towns, seed=preset.seed)
        own = build_corpus(
            world, preset.statements, preset.questions, preset.bios, preset.cot, preset.background_facts, 0
        )
        n_own = int(len(docs) * spec.replay / (1 - spec.replay))
        docs += random.Random(spec.seed).sample(own, min(n_own, len(own)))
        random.Random(spec.seed + 1).shuffle(docs)
    log(f"training {source.name} on arithmetic for {spec.steps} steps ({len(docs)} documents) -> {out}")
    model, tokenizer = load_base(source, device="cpu")
    ids = torch.tensor([t for doc in tokenizer(docs)["input_ids"] for t in doc], dtype=torch.long)
    train = preset.model_copy(
        update={"steps": spec.steps, "batch_size": spec.batch_size, "seq_len": spec.seq_len, "lr": spec.lr}
    )
    losses = pretrain(model, ids, train, "arithmetic")
    save_base(
        out,
        model,
        tokenizer,
        {
            "derived_from": str(source),
            "arithmetic": spec.model_dump(),
            "generator": ARITHMETIC_VERSION,
            "config": source_meta["config"],
            "documents": len(docs),
            "tokens": len(ids),
            "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "seconds": round(time.time() - start, 1),
        },
    )
    return out
