"""Where the time goes: `torch.profiler` over a few expert-training steps and a few generation steps.

Training: loralab's own loop (`experts.train._fit`: r=16 LoRA on gate/up/down_proj, batch 16, bf16
autocast, length-bucketed batches) over `--train-steps` batches of the RR A->B training set, after one
unprofiled warm-up step. Generation: `loralab.evaluation.generate` (batched greedy, KV cache) on
`--gen-prompts` held-out CoT prompts for up to `--gen-tokens` new tokens, after one unprofiled warm-up.
Prints, for each, the top `--top` operators by self CPU time as a Markdown table (for bench/README.md).

    .venv/bin/python bench/profile_step.py --base default
    .venv/bin/python bench/profile_step.py --base test --train-steps 2 --gen-tokens 8   # check only
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from _common import parser, twohop_data
from torch.profiler import ProfilerActivity, profile

from loralab.evaluation import generate
from loralab.experts.config import ExpertConfig
from loralab.experts.train import _fit, attach_lora, encode
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def markdown_top(prof: Any, top: int) -> str:
    """The `top` operators by self CPU time: calls, self and total CPU ms, share of all self CPU time."""
    events = list(prof.key_averages())
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    lines = [
        "| operator | calls | self CPU (ms) | self CPU % | CPU total incl. children (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for e in events[:top]:
        lines.append(
            f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | "
            f"{100 * e.self_cpu_time_total / total:.1f}% | {e.cpu_time_total / 1e3:.1f} |"
        )
    lines.append(f"| (all operators) | | {total / 1e3:.1f} | 100% | |")
    return "\n".join(lines)


def profiled(fn: Callable[[], object]) -> Any:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train-steps", type=int, default=5, help="profiled training steps (default 5)")
    p.add_argument("--gen-prompts", type=int, default=32, help="prompts in the generation batch (default 32)")
    p.add_argument("--gen-tokens", type=int, default=32, help="new tokens generated at most (default 32)")
    p.add_argument("--top", type=int, default=15, help="operators shown (default 15)")
    args = p.parse_args()
    data = twohop_data(args.workdir)
    model, tok = load_base(args.base)
    cfg = ExpertConfig(epochs=1, batch_size=16, lr=3e-3)
    examples = encode(tok, read_jsonl(data / "ab.train.jsonl"), 512, "bench")
    torch.manual_seed(cfg.seed)
    pm = attach_lora(model, cfg)
    _fit(pm, tok, examples[: cfg.batch_size], cfg)  # warm-up: one step
    n_train = args.train_steps * cfg.batch_size
    train = profiled(lambda: _fit(pm, tok, examples[:n_train], cfg))
    pm.unload()

    model, tok = load_base(args.base)
    rows = read_jsonl(data / "ac_cot.test.jsonl", required=("prompt",))[: args.gen_prompts]
    questions = [r["prompt"] for r in rows]
    generate(model, tok, questions[:4], max_new_tokens=4)  # warm-up
    gen = profiled(lambda: generate(model, tok, questions, max_new_tokens=args.gen_tokens, batch_size=64))

    print(f"### Training: {args.train_steps} steps of batch {cfg.batch_size} (loralab loop, bf16 autocast)\n")
    print(markdown_top(train, args.top))
    print(
        f"\n### Generation: {len(questions)} prompts, one batch, up to {args.gen_tokens} new tokens "
        "(loralab `generate`)\n"
    )
    print(markdown_top(gen, args.top))
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s), base {args.base}")


if __name__ == "__main__":
    main()
