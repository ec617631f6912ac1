"""Benchmark (b): loralab's batched greedy evaluation vs HF `model.generate` on the same batches.

Same model, same held-out CoT two-hop prompts (chat template applied), greedy, the same stop tokens and
`--max-new-tokens`. Rows:

1. loralab: `loralab.evaluation.generate` (length-sorted batches of `--batch-size`, left padding).
2. HF `generate`, batched: `model.generate` on exactly those batches (`length_sorted_batches`), left padded
   by the tokenizer, `eos_token_id` = the same stop tokens.
3. HF `generate`, one prompt at a time (timed once; it takes ~10x longer).

Predictions must be identical in all three rows: any mismatch is printed and the script exits with 1.
Rows 1 and 2 are timed alternately, `--repeats` times each after one warm-up, and their medians compared,
so that drift on the machine hits both alike. With `--method` and `--experts`, the model is first combined
(e.g. `--method arrow` over a library), so routed modules are checked under `generate` too.

    .venv/bin/python bench/eval_batched.py --base default
    .venv/bin/python bench/eval_batched.py --base test --n 16 --max-new-tokens 12 --repeats 1   # check only
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import parser, twohop_data

from loralab.evaluation import generate
from loralab.evaluation.generate import length_sorted_batches
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def _cut(tokenizer: Any, new: list[int], stops: Sequence[int]) -> str:
    """The decoded continuation up to (not including) its first stop token."""
    end = next((i for i, t in enumerate(new) if t in stops), len(new))
    return str(tokenizer.decode(new[:end], skip_special_tokens=True))


@torch.inference_mode()
def hf_batched(model: Any, tok: Any, questions: Sequence[str], max_new: int, batch_size: int) -> list[str]:
    """HF `generate` over loralab's length-sorted batches, left padded by the tokenizer; input order kept."""
    prompts = [prompt_text(tok, q) for q in questions]
    stops = stop_token_ids(tok)
    answers = [""] * len(prompts)
    side, tok.padding_side = tok.padding_side, "left"
    try:
        for idx in length_sorted_batches(prompts, batch_size):
            enc = tok([prompts[i] for i in idx], add_special_tokens=False, padding=True, return_tensors="pt")
            out = model.generate(
                **enc,
                max_new_tokens=max_new,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=tok.pad_token_id,
            )
            width = enc["input_ids"].shape[1]
            for i, row in zip(idx, out[:, width:].tolist(), strict=True):
                answers[i] = _cut(tok, row, stops)
    finally:
        tok.padding_side = side
    return answers


@torch.inference_mode()
def hf_single(model: Any, tok: Any, questions: Sequence[str], max_new: int) -> list[str]:
    """HF `generate` one prompt at a time (no padding)."""
    stops = stop_token_ids(tok)
    answers = []
    for q in questions:
        enc = tok(prompt_text(tok, q), return_tensors="pt", add_special_tokens=False)
        out = model.generate(
            **enc, max_new_tokens=max_new, do_sample=False, eos_token_id=stops, pad_token_id=tok.pad_token_id
        )
        answers.append(_cut(tok, out[0, enc["input_ids"].shape[1] :].tolist(), stops))
    return answers


def timed(fn: Callable[[], list[str]]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def mismatches(name: str, questions: Sequence[str], ref: Sequence[str], got: Sequence[str]) -> int:
    """Print each prediction of `got` that differs from loralab's `ref`; return how many."""
    bad = [i for i, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b]
    for i in bad:
        print(f"MISMATCH {name} #{i} {questions[i][:60]!r}\n  loralab: {ref[i]!r}\n  {name}: {got[i]!r}")
    return len(bad)


def load(args: Any) -> tuple[Any, Any]:
    model, tok = load_base(args.base)
    if args.method:
        from loralab.combination import combine

        model = combine((model, tok), [Path(e) for e in args.experts], args.method)
    return model, tok


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=128, help="prompts (default 128)")
    p.add_argument("--batch-size", type=int, default=64, help="prompts per batch (default 64)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="(default 96)")
    p.add_argument("--method", help="combine the base with --experts by this method first (e.g. arrow)")
    p.add_argument("--experts", nargs="*", default=[], help="expert folders for --method")
    args = p.parse_args()
    if bool(args.method) != bool(args.experts):
        p.error("--method and --experts go together")
    model, tok = load(args)
    rows = read_jsonl(twohop_data(args.workdir) / "ac_cot.test.jsonl", required=("prompt",))[: args.n]
    questions = [r["prompt"] for r in rows]
    n, bs, max_new = len(questions), args.batch_size, args.max_new_tokens

    ours = generate(model, tok, questions, max_new_tokens=max_new, batch_size=bs)  # warm-up
    hf_batched(model, tok, questions, max_new, bs)
    t_ours, t_hf = [], []
    for _ in range(args.repeats):  # alternate, so drift on the machine hits both rows alike
        t, ours = timed(lambda: generate(model, tok, questions, max_new_tokens=max_new, batch_size=bs))
        t_ours.append(t)
        t, theirs = timed(lambda: hf_batched(model, tok, questions, max_new, bs))
        t_hf.append(t)
    t_single, single = timed(lambda: hf_single(model, tok, questions, max_new))

    bad_b = mismatches("HF generate batched", questions, ours, theirs)
    bad_s = mismatches("HF generate per-example", questions, ours, single)
    a, b = statistics.median(t_ours), statistics.median(t_hf)
    print(f"{n} prompts, batch {bs}, up to {max_new} new tokens, greedy; median of {args.repeats} (s)")
    print("| row | seconds | loralab speed-up |\n|---|---|---|")
    print(f"| loralab `generate` (batched) | {a:.2f} | 1.00x |")
    print(f"| HF `model.generate`, same batches | {b:.2f} | {b / a:.2f}x |")
    print(f"| HF `model.generate`, per example (once) | {t_single:.2f} | {t_single / a:.2f}x |")
    print(f"identical predictions: HF batched {n - bad_b}/{n}, HF per-example {n - bad_s}/{n}")
    if bad_b or bad_s:
        sys.exit(1)


if __name__ == "__main__":
    main()
