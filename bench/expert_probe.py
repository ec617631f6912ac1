"""Probe: how well does one expert learn its facts on a base? Train on a task's train split, then report
accuracy on training items and on held-out templates (the measurement behind models/README.md's tables).

    .venv/bin/python bench/expert_probe.py --variant RR --task ab --epochs 10 --targets mlp
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import parser

from loralab.combine import combine
from loralab.evaluate import evaluate
from loralab.experts.config import ExpertConfig
from loralab.experts.train import train_expert
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl
from loralab.worlds.twohop import build_twohop


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--variant", default="RR")
    p.add_argument("--task", default="ab", help="ab, bc, ac or ac_cot")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--targets", default="mlp")
    p.add_argument("--items", type=int, default=60, help="items of each split to evaluate")
    args = p.parse_args()
    data = args.workdir / f"twohop-{args.variant}-n100-s0"
    if not (data / "meta.json").is_file():
        build_twohop(data, args.variant, 100, seed=0, overwrite=True)
    cfg = ExpertConfig(epochs=args.epochs, lr=args.lr, targets=args.targets)
    with tempfile.TemporaryDirectory() as tmp:
        expert = train_expert(args.base, [data / f"{args.task}.train.jsonl"], Path(tmp) / "e", cfg)
        for split in ("train", "test"):
            model, tok = load_base(args.base)
            combine(model, [expert], "uniform")
            rows = read_jsonl(data / f"{args.task}.{split}.jsonl", required=("prompt", "gold"))[: args.items]
            result = evaluate(model, tok, rows, max_new_tokens=128)
            print(
                f"{args.variant} {args.task} {split:5}: {result.accuracy:.2f} (n={result.n}); "
                f"e.g. {result.rows[1]['output']!r} | gold {result.rows[1]['gold']}"
            )


if __name__ == "__main__":
    main()
