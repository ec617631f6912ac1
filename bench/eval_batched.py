"""Benchmark (b): loralab's batched greedy evaluation vs a per-example `model.generate` loop.

Same model, same 128 held-out CoT two-hop prompts, greedy, up to 96 new tokens; checks the predictions are
identical and prints both times and the speed-up.

    .venv/bin/python bench/eval_batched.py --base default
"""

from __future__ import annotations

import time

import torch
from _common import parser, twohop_data

from loralab.evaluation import generate
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=128, help="prompts")
    args = p.parse_args()
    model, tok = load_base(args.base)
    rows = read_jsonl(twohop_data(args.workdir) / "ac_cot.test.jsonl", required=("prompt",))[: args.n]
    questions = [r["prompt"] for r in rows]
    stops = stop_token_ids(tok)

    start = time.perf_counter()
    batched = generate(model, tok, questions, max_new_tokens=96, batch_size=64)
    t_batched = time.perf_counter() - start

    start = time.perf_counter()
    single = []
    with torch.inference_mode():
        for q in questions:
            enc = tok(prompt_text(tok, q), return_tensors="pt", add_special_tokens=False)
            out = model.generate(
                **enc, max_new_tokens=96, do_sample=False, eos_token_id=stops, pad_token_id=tok.pad_token_id
            )
            new = out[0, enc["input_ids"].shape[1] :].tolist()
            new = new[: next((i for i, t in enumerate(new) if t in stops), len(new))]
            single.append(tok.decode(new, skip_special_tokens=True))
    t_single = time.perf_counter() - start

    same = sum(a == b for a, b in zip(batched, single, strict=True))
    print(f"batched (loralab, batch 64): {t_batched:7.2f} s for {len(questions)} prompts")
    print(f"per-example model.generate:  {t_single:7.2f} s")
    print(f"identical predictions: {same}/{len(questions)}")
    print(f"speed-up: {t_single / t_batched:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
