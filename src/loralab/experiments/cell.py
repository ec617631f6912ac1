"""One evaluation cell: base + experts + method on one dataset file, stored in the results database."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loralab.artifacts import read_json
from loralab.combination import combine
from loralab.errors import LoralabError
from loralab.evaluation import Evaluation
from loralab.evaluation.evaluators import EVALUATORS, EvalSettings
from loralab.experiments.store import add_cell, connect
from loralab.experts.library import load_expert
from loralab.gsm.evaluate import DecodeConfig
from loralab.models.load import load_base, resolve_base
from loralab.worlds.jsonl import read_jsonl


def dataset_label(data: Path) -> tuple[str, str | None]:
    """(name, generator version) of a dataset file: `<folder>/<file stem>` and the folder's meta, if any."""
    meta_path = data.parent / "meta.json"
    version = read_json(meta_path).get("generator") if meta_path.is_file() else None
    return f"{data.parent.name}/{data.name.removesuffix('.jsonl')}", version


def run_cell(
    base: str | Path,
    data: Path | str,
    db: Path | str,
    run: str,
    experts: Sequence[Path | str] = (),
    method: str | None = None,
    options: dict[str, Any] | None = None,
    library: str | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 64,
    device: str | None = None,
    method_label: str | None = None,
    retention: bool = True,
    check_finite: bool = True,
) -> tuple[int, Evaluation]:
    """Evaluate base (+ experts combined by `method`) on `data`; store the cell; return (cell id, result).

    With `retention`, a two-hop file (`ac.*.jsonl`, `ac_cot.*.jsonl`) whose folder holds the one-hop files of
    the same split (`ab.*`, `bc.*`) is scored on those too, and the records are stored with the cell (the
    cell's n and accuracy stay the two-hop ones; see `evaluation/retention.py`)."""
    cell, rows, result = evaluate_cell(
        base,
        data,
        run,
        experts,
        method,
        options,
        library,
        max_new_tokens,
        batch_size,
        device,
        method_label,
        retention,
        check_finite,
    )
    return store_one(db, cell, rows), result


def store_one(db: Path | str, cell: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """Store a one-off cell (no content key: a command's evaluation, not a run's) and its examples; its id."""
    con = connect(db)
    try:
        return add_cell(con, cell, rows)
    finally:
        con.close()


def check_prompt_lengths(
    data: Path, examples: Sequence[dict[str, Any]], tokenizer: Any, context: int | None
) -> None:
    """A prompt longer than the base's context cannot be answered (the model was never run at those
    positions): one line naming the file and the example, before any generation."""
    if not context:
        return
    for i, ex in enumerate(examples, 1):
        n = len(tokenizer(ex["prompt"])["input_ids"])
        if n >= context:
            raise LoralabError(
                f"{data}: example {ex.get('id', f'#{i}')}: its prompt is {n:,} tokens, beyond the base's "
                f"context of {context:,}"
            )


def evaluate_cell(
    base: str | Path,
    data: Path | str,
    run: str,
    experts: Sequence[Path | str] = (),
    method: str | None = None,
    options: dict[str, Any] | None = None,
    library: str | None = None,
    max_new_tokens: int = 128,
    batch_size: int = 64,
    device: str | None = None,
    method_label: str | None = None,
    retention: bool = True,
    check_finite: bool = True,
    evaluator: str = "twohop",
    prompt: str = "cot",
    decode: dict[str, Any] | None = None,
    limit: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], Evaluation]:
    """`run_cell` without the store: (the cell's row, its example records, the result). `check_finite` False
    skips the experts' NaN/Inf scan (`load_expert`). `evaluator` (`EVALUATORS`) scores the file; a GSM one
    asks with prompt style `prompt` and decodes with `decode` (`DecodeConfig`); `limit`: the first N rows."""
    data = Path(data)
    examples = read_jsonl(data, required=("prompt", "gold"))[:limit]
    EVALUATORS[evaluator].check(data, examples)
    base_path = resolve_base(base)
    model, tokenizer = load_base(base_path, device=device)
    check_prompt_lengths(data, examples, tokenizer, getattr(model.config, "max_position_embeddings", None))
    if experts:
        loaded = [load_expert(e, check_finite=check_finite) for e in experts]
        model = combine(model, loaded, method or "uniform", **(options or {}))
    label = method_label or (method if experts else "base")
    decoding = DecodeConfig(**decode) if decode is not None else None
    settings = EvalSettings(max_new_tokens, batch_size, str(label), prompt, decoding, retention)
    result = EVALUATORS[evaluator].evaluate(model, tokenizer, data, examples, settings)
    name, version = dataset_label(data)
    formats = {prompt} if evaluator == "gsm" else {ex.get("format", "direct") for ex in examples}
    cell = {
        "run": run,
        "base": _base_label(base, base_path),
        "dataset": name,
        "dataset_version": version,
        "prompting": "/".join(sorted(formats)),
        "method": label,
        "library": library or (",".join(Path(e).name for e in experts) if experts else "-"),
        "n": result.n,
        "correct": result.correct,
        "accuracy": result.accuracy,
        "ci_low": result.ci[0],
        "ci_high": result.ci[1],
        "config": {
            "base": str(base_path),
            "experts": [str(Path(e).resolve()) for e in experts],
            "method": method,
            "options": options or {},
            "data": str(data.resolve()),
            "max_new_tokens": max_new_tokens,
            **({"evaluator": evaluator, "decode": decode} if evaluator != "twohop" else {}),
        },
    }
    return cell, result.rows + result.extra, result


def _base_label(base: str | Path, path: Path) -> str:
    return f"builtin:{base}" if str(base) != str(path) else path.name
