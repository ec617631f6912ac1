"""Routed forward time: Arrow over 8 experts vs a single merged adapter, and vs PEFT's Arrow.

8 random rank-16 experts on gate/up/down_proj. "merged" = the Uniform merge folded into the weights (the cost
of any merged adapter: the base's own); "PEFT LoRA" = one unmerged r=16 PEFT adapter, for reference; "PEFT
Arrow" = `create_arrow_model` with the same top_k, temperature and seeded power-iteration prototypes as
loralab's `arrow` with prototype_method=power (the logits are checked to agree before timing). Batch 32 x 64
tokens, median of repeats. Run on the built-in base and on a wider random Qwen2 (hidden 1024) to show how
the ratios move with width.

    .venv/bin/python bench/arrow_overhead.py --base default
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from _common import median_seconds, parser

from loralab.combination import combine
from loralab.models.load import load_base, resolve_base


def random_experts(model: Any, folder: Path, n: int) -> list[Path]:
    from peft import LoraConfig, get_peft_model

    paths = []
    for i in range(n):
        torch.manual_seed(i)
        cfg = LoraConfig(
            r=16, lora_alpha=32, target_modules=["gate_proj", "up_proj", "down_proj"], init_lora_weights=False
        )
        pm = get_peft_model(model, cfg)
        pm.save_pretrained(str(folder / f"e{i}"))
        model = pm.unload()
        paths.append(folder / f"e{i}")
    return paths


def wide_base(folder: Path) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(resolve_base("test"))
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=4,
        num_attention_heads=16,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def measure(base: str | Path, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = load_base(base)
        experts = random_experts(model, Path(tmp), 8)
        ids = torch.randint(0, 300, (32, 64))

        def timed(m: Any) -> float:
            with torch.inference_mode():
                return median_seconds(lambda: m(input_ids=ids), repeats)

        merged = combine(load_base(base)[0], experts, "uniform")
        t_merged = timed(merged)
        from peft import PeftModel

        single = PeftModel.from_pretrained(load_base(base)[0], str(experts[0]))
        t_peft = timed(single)
        opts = {"top_k": 3, "prototype_method": "power", "seed": 0}
        arrow = combine(load_base(base)[0], experts, "arrow", **opts)
        t_arrow = timed(arrow)
        from peft import ArrowConfig, create_arrow_model

        peft_arrow = create_arrow_model(
            load_base(base)[0], [str(p) for p in experts], ArrowConfig(top_k=3, rng_seed=0)
        )
        with torch.inference_mode():
            gap = float((arrow(input_ids=ids).logits - peft_arrow(input_ids=ids).logits).abs().max())
        t_peft_arrow = timed(peft_arrow)
    print(
        f"[{Path(str(base)).name}] merged {t_merged * 1e3:7.1f} ms | one PEFT LoRA {t_peft * 1e3:7.1f} ms | "
        f"Arrow(8 experts, top_k 3) {t_arrow * 1e3:7.1f} ms | PEFT Arrow {t_peft_arrow * 1e3:7.1f} ms "
        f"(max |logit diff| {gap:.1e})\n"
        f"    Arrow / merged {t_arrow / t_merged:.2f}x, Arrow / PEFT LoRA {t_arrow / t_peft:.2f}x (goal <= 1.3x); "
        f"PEFT Arrow / Arrow {t_peft_arrow / t_arrow:.2f}x (goal >= 2x)"
    )


def main() -> None:
    args = parser(__doc__).parse_args()
    measure(args.base, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        measure(wide_base(Path(tmp) / "qwen2-h1024"), args.repeats)


if __name__ == "__main__":
    main()
