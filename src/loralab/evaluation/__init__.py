"""Evaluation: batched greedy generation, answer extraction, accuracy with a Wilson interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loralab.evaluation.generate import generate
from loralab.evaluation.score import extract, is_correct, wilson

__all__ = ["Evaluation", "evaluate", "extract", "generate", "is_correct", "wilson"]


@dataclass
class Evaluation:
    """What every evaluator returns (`loralab.evaluation.evaluators.EVALUATORS`): the scored per-example
    records (what the store keeps) and the cell's accuracy over them. `extra` holds records stored with the
    cell but not counted in its accuracy (the two-hop evaluator's one-hop retention questions); an
    evaluator with a per-example analysis (GSM: solution and error types) keeps it in `analyses` and
    `details`, aligned with `rows`."""

    rows: list[dict[str, Any]]
    extra: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[Any] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def correct(self) -> int:
        return sum(int(r["correct"]) for r in self.rows)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)

    def count(self, status: str) -> int:
        """How many examples' analysis has this status (GSM: "no answer", ...)."""
        return sum(1 for d in self.details if d["status"] == status)


def evaluate(
    model: Any,
    tokenizer: Any,
    examples: Sequence[dict[str, Any]],
    max_new_tokens: int = 128,
    batch_size: int = 64,
    label: str = "evaluating",
) -> Evaluation:
    """Generate for every example's `prompt`, extract by its `format` (`cot` or `direct`), score vs `gold`."""
    outputs = generate(model, tokenizer, [ex["prompt"] for ex in examples], max_new_tokens, batch_size, label)
    rows = []
    for ex, text in zip(examples, outputs, strict=True):
        fmt = ex.get("format", "direct")
        got = extract(text, fmt)
        rows.append(
            {
                "id": ex.get("id", ""),
                "prompt": ex["prompt"],
                "gold": ex["gold"],
                "output": text,
                "extracted": got,
                "correct": is_correct(got, ex["gold"], fmt),
                "task": ex.get("task"),
                "triplet": ex.get("triplet", ex.get("unit")),  # a graph question's split unit
                "bridge": ex.get("b", ex.get("middle")),
            }
        )
    return Evaluation(rows)
