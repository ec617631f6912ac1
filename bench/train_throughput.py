"""Benchmark (a): expert training tokens/s, loralab's loop vs HF Trainer + PEFT, same model, data and settings.

Both train the same PEFT LoRA (`attach_lora`: r=16, alpha 32, dropout 0.05 on gate/up/down_proj) of the same
base on the same encoded examples (one epoch of the RR A->B training set, 900 examples), batch 16, bf16
autocast on the CPU, AdamW at lr 3e-3 without weight decay or gradient clipping (the Trainer's default
clipping at 1.0 is turned off, as loralab does not clip), loss on answer tokens only. Tokens = non-padding
tokens seen. The sides run alternately, `--repeats` times each, and their medians are compared.

Model FLOPs per token are counted as 4 x (frozen base parameters) + 6 x (LoRA parameters): forward and
input-gradient matmuls through the frozen weights, plus the weight gradient of the LoRA factors (the tied
embedding counts once, as the LM head; attention scores are left out). Their rate is compared with the bf16
matmul peak (`_common.bf16_matmul_peak`) measured in the same run. The script also checks, with a forward
hook, that both sides really ran the MLP projections in bf16.

    .venv/bin/python bench/train_throughput.py --base default
    .venv/bin/python bench/train_throughput.py --base test --n 64 --repeats 1   # check only
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from _common import bf16_matmul_peak, parser, twohop_data

from loralab.experts.config import ExpertConfig
from loralab.experts.train import Example, _fit, attach_lora, encode
from loralab.models.load import load_base, resolve_base
from loralab.worlds.jsonl import read_jsonl


class Run(NamedTuple):
    seconds: float
    tokens: int
    dtype: str
    """dtype of the first down_proj's output during training (bf16 autocast must show bfloat16)"""
    flops_per_token: float


def _watch_dtype(model: Any) -> tuple[list[str], Any]:
    """Record the output dtype of the first `mlp.down_proj` (PEFT-wrapped) on each training forward."""
    seen: list[str] = []
    module = next(m for n, m in model.named_modules() if n.endswith("mlp.down_proj"))
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(str(out.dtype).split(".")[-1]))
    return seen, handle


def _flops_per_token(pm: Any) -> float:
    trainable = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in pm.parameters() if not p.requires_grad)
    return 4.0 * frozen + 6.0 * trainable


def loralab_run(base: Path, rows: list[dict[str, Any]], cfg: ExpertConfig) -> Run:
    model, tok = load_base(base)
    examples = encode(tok, rows, 512, "bench")
    torch.manual_seed(cfg.seed)
    pm = attach_lora(model, cfg)
    seen, handle = _watch_dtype(pm)
    _, seconds, tokens = _fit(pm, tok, examples, cfg)
    handle.remove()
    return Run(seconds, tokens, seen[0], _flops_per_token(pm))


def _collate(pad: int) -> Any:
    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.tensor([b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch])
        labels = torch.tensor([b["labels"] + [-100] * (width - len(b["labels"])) for b in batch])
        mask = torch.tensor([[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch])
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return collate


def trainer_run(base: Path, rows: list[dict[str, Any]], cfg: ExpertConfig) -> Run:
    from transformers import Trainer, TrainingArguments

    model, tok = load_base(base)
    model.train()
    examples: list[Example] = encode(tok, rows, 512, "bench")
    dataset = [{"input_ids": x, "labels": y} for x, y in examples]
    tokens = sum(len(x) for x, _ in examples) * (cfg.epochs or 1)
    torch.manual_seed(cfg.seed)
    pm = attach_lora(model, cfg)
    seen, handle = _watch_dtype(pm)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=cfg.epochs or 1,
            learning_rate=cfg.lr or 3e-3,
            weight_decay=0.0,
            max_grad_norm=0.0,  # no clipping, as in loralab's loop
            bf16=True,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_steps=10_000,
            disable_tqdm=True,
            remove_unused_columns=False,
            seed=cfg.seed,
        )
        trainer = Trainer(
            model=pm, args=args, train_dataset=dataset, data_collator=_collate(tok.pad_token_id)
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    handle.remove()
    return Run(seconds, tokens, seen[0], _flops_per_token(pm))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="use only the first N training examples (a check)")
    args = p.parse_args()
    base = resolve_base(args.base)
    rows = read_jsonl(twohop_data(args.workdir) / "ab.train.jsonl")[: args.n]
    cfg = ExpertConfig(epochs=1, batch_size=16, lr=3e-3)
    peak = bf16_matmul_peak()
    sides = {"loralab": loralab_run, "HF Trainer + PEFT": trainer_run}
    runs: dict[str, list[Run]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # alternate, so drift on the machine hits both sides alike
        for name, fn in sides.items():
            runs[name].append(fn(base, rows, cfg))
    rate: dict[str, float] = {}
    print(f"base {base}; {len(rows)} examples, batch {cfg.batch_size}, r={cfg.r} on {cfg.targets}")
    print("| side | tokens/epoch | tokens/s | model GFLOP/s | MFU vs measured bf16 peak | MLP output dtype |")
    print("|---|---:|---:|---:|---:|---|")
    for name, rs in runs.items():
        rate[name] = statistics.median(r.tokens / r.seconds for r in rs)
        gflops = rs[0].flops_per_token * rate[name] / 1e9
        print(
            f"| {name} | {rs[0].tokens} | {rate[name]:.0f} | {gflops:.1f} | {gflops / peak:.1%} | {rs[0].dtype} |"
        )
    print(f"bf16 matmul peak (2048^3, best of 5, this run): {peak:.0f} GFLOP/s; median of {args.repeats}")
    print(
        f"model FLOPs/token: {runs['loralab'][0].flops_per_token / 1e6:.1f}M (4 x frozen + 6 x LoRA params)"
    )
    print(f"ratio loralab / Trainer: {rate['loralab'] / rate['HF Trainer + PEFT']:.2f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
