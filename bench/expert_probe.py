"""Probe: how well does one expert learn its facts on a base? Train on a task's train split, then report
accuracy on training items and on the held-out dev templates (the measurement behind models/README.md's
tables). Dev by default: settings are chosen on dev, never on test (`--splits train,test` only to confirm a
choice already made).

    .venv/bin/python bench/expert_probe.py --variant RR --task ab --epochs 10 --targets mlp
    .venv/bin/python bench/expert_probe.py --task ac_cot --triplets 20 --epochs 4 --lr 1e-2 --items 40
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import parser

from loralab.combination import combine
from loralab.evaluation import evaluate
from loralab.experts.config import ExpertConfig
from loralab.experts.train import train_expert
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl
from loralab.worlds.twohop import ensure_twohop


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--variant", default="RR")
    p.add_argument("--task", default="ab", help="ab, bc, ac or ac_cot")
    p.add_argument("--train-tasks", default=None, help="train on these tasks (comma list; default: --task)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--targets", default="mlp")
    p.add_argument("--items", type=int, default=60, help="items of each split to evaluate")
    p.add_argument("--triplets", type=int, default=100)
    p.add_argument("--templates", type=int, default=50, help="templates per relation (2 dev, 2 test)")
    p.add_argument("--seed", type=int, default=0, help="data draw and training seed")
    p.add_argument("--splits", default="train,dev", help="splits to evaluate (comma list)")
    args = p.parse_args()
    data = ensure_twohop(
        args.workdir / f"twohop-{args.variant}-n{args.triplets}-t{args.templates}-s{args.seed}",
        args.variant,
        args.triplets,
        templates=args.templates,
        seed=args.seed,
    )
    cfg = ExpertConfig(epochs=args.epochs, lr=args.lr, targets=args.targets, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = (args.train_tasks or args.task).split(",")
        start = time.perf_counter()
        expert = train_expert(args.base, [data / f"{t}.train.jsonl" for t in tasks], Path(tmp) / "e", cfg)
        print(
            f"trained in {time.perf_counter() - start:.0f} s ({cfg.targets}, epochs {args.epochs}, lr {args.lr})"
        )
        for split in args.splits.split(","):
            model, tok = load_base(args.base)
            combine(model, [expert], "uniform")
            rows = read_jsonl(data / f"{args.task}.{split}.jsonl", required=("prompt", "gold"))
            rows = rows[:: max(1, len(rows) // args.items)][: args.items]  # spread over triplets
            result = evaluate(model, tok, rows, max_new_tokens=128)
            lo, hi = result.ci
            print(
                f"{args.variant} {args.task} {split:5}: {result.accuracy:.2f} [{lo:.2f}, {hi:.2f}] (n={result.n}); "
                f"e.g. {result.rows[1]['output']!r} | gold {result.rows[1]['gold']}"
            )


if __name__ == "__main__":
    main()
