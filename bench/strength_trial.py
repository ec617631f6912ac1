"""Trial: experts trained to hold their facts at any strength in [LO, HI], then `routing_probe.py`'s
measurements on them (issue 18: is dilution the cause of PC4's failure on the built-in base?). Dev split only.

At every training step the LoRA delta is scaled by u ~ U[LO, HI] (PEFT's per-layer `scaling` times u, one u
per step, seeded by the expert's seed); the saved adapter is a plain PEFT LoRA, used at strength 1 like any
other. Every argument after `--strengths` goes to routing_probe.py (its TAG, --epochs, --workdir, --skip ...).

    .venv/bin/python bench/strength_trial.py --strengths 0.5,1 robust12 --epochs 12 --skip route
"""

from __future__ import annotations

import random
import runpy
import sys
from pathlib import Path
from typing import Any

import loralab.experts.train as training

_fit = training._fit


def scaled_fit(lo: float, hi: float) -> Any:
    def fit(model: Any, tokenizer: Any, examples: list[Any], cfg: Any) -> Any:
        from peft.tuners.lora import LoraLayer

        layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        full = {id(m): dict(m.scaling) for m in layers}
        rng = random.Random(cfg.seed + 7919)
        draws: list[float] = []

        def pre(module: Any, args: Any, kwargs: Any) -> None:
            if module.training:
                u = rng.uniform(lo, hi)
                draws.append(u)
                for m in layers:
                    for name, s in full[id(m)].items():
                        m.scaling[name] = s * u

        hook = model.register_forward_pre_hook(pre, with_kwargs=True)
        try:
            return _fit(model, tokenizer, examples, cfg)
        finally:
            hook.remove()
            for m in layers:
                m.scaling.update(full[id(m)])  # saved and used at full strength
            if draws:
                print(f"strengths drawn: {len(draws)} in [{min(draws):.3f}, {max(draws):.3f}]", flush=True)

    return fit


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "--strengths":
        sys.exit("usage: strength_trial.py --strengths LO,HI TAG [routing_probe.py options]")
    lo, hi = (float(x) for x in sys.argv[2].split(","))
    if not 0 < lo <= hi:
        sys.exit(f"--strengths {sys.argv[2]}: want 0 < LO <= HI")
    training._fit = scaled_fit(lo, hi)  # train_expert looks _fit up in its module at call time
    sys.argv = ["routing_probe.py", *sys.argv[3:]]
    runpy.run_path(str(Path(__file__).with_name("routing_probe.py")), run_name="__main__")


if __name__ == "__main__":
    main()
