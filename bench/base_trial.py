"""Trial: build a variant of the built-in default base (issue 18: "the base's pretraining recipe or size"),
saving a checkpoint at several step counts, so that a cheap probe (`task_separability.py --base`) and the
routing probe (`routing_probe.py --base DIR/step-N`) can say whether more width or more pretraining writes
the task into the base's hidden states. The corpus, tokenizer and seed are the default preset's unless a
`--set` changes them; the learning-rate schedule follows the final step count, so a checkpoint before the
end is not the base that a shorter build would give (it has not had its cool-down).

    .venv/bin/python bench/base_trial.py --out loralab-work/trials/steps2x --set steps=1900 \\
        --checkpoints 475,950,1425,1900
    .venv/bin/python bench/base_trial.py --out /tmp/t --base test --checkpoints 10,30   # check only

`--corpus varied` tests the corpus itself (issue 18: "a corpus where the relation decides the next token in many
contexts"): every statement may open with one of 24 lead-ins (12 x 25 phrasings per relation instead of 12), and
half of the chat answers are the bare object ("{y}." and short forms), so that at the position that predicts the
answer the base must carry which relation was asked of whom, as in the experiments' answer-first templates. The
documents are as many as the default's (the same people, facts and counts), so the build costs the same.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from loralab.models.save import save_base
from loralab.models.tiny import BASE_PRESETS, corpus_and_tokens, make_model, pretrain

LEADS = (
    "It is well known that",
    "Records show that",
    "According to a local paper,",
    "Few people know that",
    "As it happens,",
    "Friends confirm that",
    "By all accounts,",
    "It turns out that",
    "Everyone in town knows that",
    "A recent profile noted that",
    "Curiously,",
    "As far as anyone can tell,",
    "The archives say that",
    "Neighbours mention that",
    "In short,",
    "For the record,",
    "One biography states that",
    "Old letters reveal that",
    "It was reported that",
    "To nobody's surprise,",
    "Word has it that",
    "An interview revealed that",
    "As the story goes,",
    "Public records confirm that",
)
SHORT_ANSWERS = ("{y}.", "It is {y}.", "That would be {y}.", "{y}, as far as I know.")


def varied_templates() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[tuple[str, str], ...]]]:
    """The corpus templates of `--corpus varied`: statements with lead-ins, and short answers beside the long."""
    from loralab.worlds.corpus_templates import CORPUS_QUESTIONS, CORPUS_STATEMENTS
    from loralab.worlds.templates import RELATIONS, normalise

    def lead(text: str, opener: str) -> str:
        first = text if text.startswith("{") else text[0].lower() + text[1:]
        return f"{opener} {first}"

    statements = {r: ts + tuple(lead(t, o) for t in ts for o in LEADS) for r, ts in CORPUS_STATEMENTS.items()}
    questions = {
        r: qa + tuple((q, a) for q, _ in qa for a in SHORT_ANSWERS) for r, qa in CORPUS_QUESTIONS.items()
    }
    experiment = {normalise(t) for rel in RELATIONS.values() for qa in rel.templates for t in qa}
    mine = {normalise(t) for ts in statements.values() for t in ts}
    mine |= {normalise(t) for qa in questions.values() for pair in qa for t in pair}
    clash = sorted(experiment & mine)
    if clash:
        sys.exit(f"--corpus varied: phrasings equal to experiment templates: {clash[:3]}")
    return statements, questions


def parse_sets(items: list[str], preset: str) -> Any:
    """The preset with `key=value` overrides (values typed by the preset's own fields)."""
    base = BASE_PRESETS[preset].model_dump()
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in base:
            sys.exit(f"--set {item}: expected KEY=VALUE with KEY one of {', '.join(base)}")
        base[key] = type(base[key])(value)
    try:
        return type(BASE_PRESETS[preset]).model_validate(base)
    except ValidationError as exc:
        sys.exit(f"--set: {exc.errors()[0]['msg']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the step-N base folders")
    ap.add_argument("--base", default="default", choices=list(BASE_PRESETS), help="preset to start from")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset field")
    ap.add_argument("--checkpoints", default="", help="comma-separated step counts to save (the last always)")
    ap.add_argument("--corpus", default="default", choices=("default", "varied"), help="corpus templates")
    args = ap.parse_args()
    if args.corpus == "varied":
        import loralab.models.corpus as corpus_module

        corpus_module.CORPUS_STATEMENTS, corpus_module.CORPUS_QUESTIONS = varied_templates()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    p = parse_sets(args.set, args.base)
    try:
        marks = {int(s) for s in args.checkpoints.split(",") if s.strip()} | {p.steps}
    except ValueError:
        sys.exit(f"--checkpoints {args.checkpoints}: expected comma-separated integers")
    if min(marks) < 1 or max(marks) > p.steps:
        sys.exit(f"--checkpoints {args.checkpoints}: each must lie in 1..{p.steps} (steps)")
    start = time.time()
    _, tokenizer, ids = corpus_and_tokens(p)
    model = make_model(p, tokenizer)
    params = sum(t.numel() for t in model.parameters())
    print(f"{params / 1e6:.2f}M parameters, corpus {len(ids):,} tokens, {p.steps} steps", flush=True)

    def save(step: int, losses: list[float]) -> None:
        if step not in marks:
            return
        tail = losses[-20:]
        meta = {
            "preset": f"trial:{args.base}",
            "corpus": args.corpus,
            "config": p.model_dump(),
            "trial_step": step,
            "corpus_tokens": len(ids),
            "parameters": params,
            "final_loss": sum(tail) / len(tail),
            "seconds": round(time.time() - start, 1),
        }
        save_base(args.out / f"step-{step}", model, tokenizer, meta)
        print(f"step {step}: loss {meta['final_loss']:.3f}, {meta['seconds']:.0f} s", flush=True)

    pretrain(model, ids, p, "trial", after_step=save)


if __name__ == "__main__":
    main()
