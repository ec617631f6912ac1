"""Wall time of `loralab audit` for 8 rank-16 adapters on one base (issue 17: under 5 minutes for the
built-in default base on the 2-core machine).

The adapters are random non-zero PEFT LoRAs (init_lora_weights=False, r=16, alpha=32, attention + MLP),
as a user's own adapters would be: loralab did not train them, so the probes come from a probe file, each
expert owning `--per-expert` held-out one-hop questions of the two-hop RR dataset (rows {prompt, answer,
gold, expert}). Timed: one `audit` call (strength curves at 6 lambdas, every pair under uniform and arrow,
the whole library under both, the geometry), in-process, after the base is loaded once.

    .venv/bin/python bench/audit_time.py                      # the default base
    .venv/bin/python bench/audit_time.py --base test          # the tiny test base: seconds
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from _common import parser, twohop_data

N_EXPERTS, RANK = 8, 16


def make_library(base: str, folder: Path, n: int, rank: int) -> list[Path]:
    """`n` random rank-`rank` PEFT adapters for `base` in `folder` (made once)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from loralab.models.load import load_base

    paths = []
    for i in range(n):
        out = folder / f"expert-{i}"
        paths.append(out)
        if (out / "adapter_model.safetensors").is_file():
            continue
        model, _ = load_base(base, device="cpu")
        torch.manual_seed(i)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False)
        get_peft_model(model, cfg).save_pretrained(str(out))
    return paths


def probe_file(data: Path, experts: list[Path], per_expert: int, out: Path) -> Path:
    """Each expert owns its own slice of the held-out one-hop questions."""
    from loralab.worlds.jsonl import read_jsonl, write_jsonl

    rows = read_jsonl(data / "ab.test.jsonl", required=("prompt", "gold"))
    rows += read_jsonl(data / "bc.test.jsonl", required=("prompt", "gold"))
    probes = [
        {**r, "expert": e.name}
        for k, e in enumerate(experts)
        for r in rows[k * per_expert : (k + 1) * per_expert]
    ]
    write_jsonl(out, probes)
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--per-expert", type=int, default=16, help="probes per expert")
    p.add_argument("--experts", type=int, default=N_EXPERTS)
    p.add_argument("--rank", type=int, default=RANK)
    args = p.parse_args()
    import torch

    from loralab.diagnose.audit import audit
    from loralab.models.load import load_base

    work = args.workdir / f"audit-{args.base.replace('/', '_')}-{args.experts}x{args.rank}"
    experts = make_library(args.base, work / "library", args.experts, args.rank)
    probes = probe_file(twohop_data(args.workdir), experts, args.per_expert, work / "probes.jsonl")
    loaded = load_base(args.base, device="cpu")
    start = time.perf_counter()
    result = audit([work / "library"], loaded, probes, ("uniform", "arrow"), args.per_expert)
    seconds = time.perf_counter() - start
    summary = {
        "base": args.base,
        "experts": args.experts,
        "rank": args.rank,
        "per_expert": args.per_expert,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 1),
        "reading": result["reading"],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
