"""EVALUATORS: how a cell's questions are asked and scored, one entry per kind, all returning `Evaluation`.

- `twohop`: greedy generation, the answer extracted by the example's format (cot: the last step; direct),
  exact match against `gold`; beside a two-hop file (ac, ac_cot) the same triplets' one-hop questions (ab,
  bc) are asked too and kept in `Evaluation.extra`, which is what retention is measured on (beside a graph
  composition, its two atomic relations' questions about the same entities: `retention_sets`).
- `gsm`: the prompt style (0-shot CoT, 8-shot, tool-integrated reasoning with code run in the sandbox),
  the numeric answer extracted and graded against `gold`, each example analysed against its solution
  steps (solution type, error type) into `Evaluation.analyses` and `details`.

An evaluator is a function (model, tokenizer, data file, its examples, `EvalSettings`) -> `Evaluation`;
its `version` goes into the content key of every cell it scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loralab.evaluation import Evaluation, evaluate
from loralab.evaluation.retention import retention_sets
from loralab.gsm.evaluate import (
    GSM_EVALUATOR_VERSION,
    DecodeConfig,
    check_golds,
    evaluate_gsm,
    hf_batch_generate,
)

RETENTION_TOKENS = 48
"""New tokens for a one-hop retention question (a direct answer)."""


@dataclass(frozen=True)
class EvalSettings:
    """How to ask (not what): decoding budget and batch, the label progress bars show; GSM's prompt style
    and decoding (TIR rounds, sandbox limits); whether the two-hop evaluator also asks retention."""

    max_new_tokens: int = 128
    batch_size: int = 64
    label: str = "base"
    prompt: str = "cot"
    decode: DecodeConfig | None = None
    retention: bool = True


@dataclass(frozen=True)
class Evaluator:
    name: str
    description: str
    version: str  # part of the content key of every cell it scores
    evaluate: Callable[[Any, Any, Path, Sequence[dict[str, Any]], EvalSettings], Evaluation]
    # (data file, its examples) -> None or a LoralabError naming the file: run before any model loads
    check: Callable[[Path, Sequence[dict[str, Any]]], None] = lambda data, examples: None


def _twohop(
    model: Any, tokenizer: Any, data: Path, examples: Sequence[dict[str, Any]], s: EvalSettings
) -> Evaluation:
    result = evaluate(model, tokenizer, examples, s.max_new_tokens, s.batch_size, f"evaluating {s.label}")
    for name, one_hop in retention_sets(data) if s.retention else []:
        label = f"retention {name} {s.label}"
        result.extra += evaluate(model, tokenizer, one_hop, RETENTION_TOKENS, s.batch_size, label).rows
    return result


def _gsm(
    model: Any, tokenizer: Any, data: Path, examples: Sequence[dict[str, Any]], s: EvalSettings
) -> Evaluation:
    generate = hf_batch_generate(model, tokenizer, s.max_new_tokens, s.batch_size)
    return evaluate_gsm(generate, examples, s.prompt, tokenizer, s.decode, s.batch_size)


EVALUATORS: dict[str, Evaluator] = {}


def register(evaluator: Evaluator) -> None:
    if evaluator.name in EVALUATORS:
        raise ValueError(f"evaluator {evaluator.name!r} registered twice")
    EVALUATORS[evaluator.name] = evaluator


register(
    Evaluator(
        "twohop",
        "exact match of the extracted answer (cot or direct), with one-hop retention beside two-hop files",
        "eval-1",  # bump when a stored cell's meaning changes (extraction, retention, prompt rendering)
        _twohop,
    )
)
register(
    Evaluator(
        "gsm",
        "numeric answer extraction, TIR rounds in the sandbox, per-example error analysis",
        GSM_EVALUATOR_VERSION,
        _gsm,
        check_golds,
    )
)
