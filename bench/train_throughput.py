"""Benchmark (a): expert training tokens/s, loralab's loop vs HF Trainer + PEFT, same model, data and settings.

Both train r=16 LoRA on gate/up/down_proj for one epoch of the RR A->B training set (900 examples), batch 16,
bf16 autocast on the CPU, loss on answer tokens only. Tokens = non-padding tokens seen. Also prints the
achieved matmul rate (about 4 x parameters x tokens FLOPs for frozen-weight LoRA training) as a fraction
of the machine's measured bf16 matmul peak.

    .venv/bin/python bench/train_throughput.py --base default
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _common import bf16_matmul_peak, parser, twohop_data

from loralab.experts.config import ExpertConfig
from loralab.experts.train import _fit, attach_lora, encode
from loralab.models.load import load_base, resolve_base
from loralab.worlds.jsonl import read_jsonl


def loralab_run(base: Path, rows: list[dict[str, Any]], cfg: ExpertConfig) -> tuple[float, int]:
    model, tok = load_base(base)
    examples = encode(tok, rows, 512, "bench")
    pm = attach_lora(model, cfg)
    _, seconds, tokens = _fit(pm, tok, examples, cfg)
    return seconds, tokens


def trainer_run(base: Path, rows: list[dict[str, Any]], cfg: ExpertConfig) -> tuple[float, int]:
    from transformers import Trainer, TrainingArguments

    model, tok = load_base(base)
    model.train()
    examples = encode(tok, rows, 512, "bench")
    dataset = [{"input_ids": x, "labels": y} for x, y in examples]
    tokens = sum(len(x) for x, _ in examples) * cfg.epochs
    pad = tok.pad_token_id

    def collate(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.tensor([b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch])
        labels = torch.tensor([b["labels"] + [-100] * (width - len(b["labels"])) for b in batch])
        mask = torch.tensor([[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch])
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    pm = attach_lora(model, cfg)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=cfg.epochs,
            learning_rate=3e-3,
            bf16=True,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_steps=10_000,
            disable_tqdm=True,
            remove_unused_columns=False,
            seed=cfg.seed,
        )
        trainer = Trainer(model=pm, args=args, train_dataset=dataset, data_collator=collate)  # type: ignore[arg-type]
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return seconds, tokens


def main() -> None:
    args = parser(__doc__).parse_args()
    base = resolve_base(args.base)
    rows = read_jsonl(twohop_data(args.workdir) / "ab.train.jsonl")
    cfg = ExpertConfig(epochs=1, batch_size=16, lr=3e-3)
    model, _ = load_base(base)
    n_params = sum(p.numel() for p in model.parameters())
    peak = bf16_matmul_peak()
    best: dict[str, float] = {}
    for name, fn in (("loralab", loralab_run), ("HF Trainer + PEFT", trainer_run)):
        rates = []
        for _ in range(args.repeats):
            seconds, tokens = fn(base, rows, cfg)
            rates.append(tokens / seconds)
        best[name] = sorted(rates)[len(rates) // 2]
        gflops = 4 * n_params * best[name] / 1e9
        print(
            f"{name:18} {best[name]:8.0f} tok/s  ~{gflops:5.1f} GFLOP/s = {gflops / peak:5.1%} of bf16 peak "
            f"(median of {args.repeats})"
        )
    print(f"bf16 matmul peak {peak:.0f} GFLOP/s; model {n_params / 1e6:.1f}M params")
    print(f"ratio loralab / Trainer: {best['loralab'] / best['HF Trainer + PEFT']:.2f}x (goal >= 1.5x)")


if __name__ == "__main__":
    main()
