"""Delta-space TIES / DARE over 8 adapters: time and peak memory, loralab vs PEFT's add_weighted_adapter.

8 random rank-16 LoRA experts on one square linear layer of width --width (default 2048; a full delta is
width^2 float32). Timed: loralab `ties` and `dare_ties` (delta space, exact), PEFT `ties` / `dare_ties`
(factor space: a different, cheaper computation, listed for reference) and PEFT `ties_svd` /
`dare_ties_svd` (delta space, then a truncated SVD: the like-for-like peer; loralab's `rank` option adds the
same SVD, timed as loralab+svd). Peak memory: each merge runs in a fresh subprocess and reports its peak
resident memory above the loaded factors (after the same merge ran once at width 64 to initialise the
kernels), in units of one full delta, the merged result included (glibc's mmap threshold is pinned so freed
tensors leave the resident set).

    .venv/bin/python bench/merge_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

N_EXPERTS, RANK = 8, 16


def factors(width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [
        (torch.randn(RANK, width, generator=gen) / width**0.5, torch.randn(width, RANK, generator=gen))
        for _ in range(N_EXPERTS)
    ]


def prepare_ours(method: str, width: int, rank: int | None) -> Callable[[], object]:
    from loralab.combination import merges
    from loralab.combination.lora import Lora, refactor

    loras = [Lora(a, b, 2.0) for a, b in factors(width)]
    fn = getattr(merges, method)
    extra = {"module": "m"} if method == "dare_ties" else {}

    def run() -> object:
        delta = fn(loras, density=0.2, **extra)
        return refactor(delta, rank) if rank is not None else delta

    return run


def prepare_peft(kind: str, width: int) -> Callable[[], object]:
    from peft import LoraConfig, get_peft_model

    class One(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(width, width, bias=False)

    model: Any = None
    base = One()
    for i, (a, b) in enumerate(factors(width)):
        cfg = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules=["proj"])
        if model is None:
            model = get_peft_model(base, cfg, adapter_name=f"e{i}")
        else:
            model.add_adapter(f"e{i}", cfg)
        with torch.no_grad():
            model.base_model.model.proj.lora_A[f"e{i}"].weight.copy_(a)
            model.base_model.model.proj.lora_B[f"e{i}"].weight.copy_(b)
    names = [f"e{i}" for i in range(N_EXPERTS)]
    extra = {"svd_rank": RANK} if kind.endswith("_svd") else {}
    return lambda: model.add_weighted_adapter(
        names, [1.0] * N_EXPERTS, "m", combination_type=kind, density=0.2, **extra
    )


def child(spec: str, width: int) -> None:
    """Run one merge and print its time and peak RSS growth (bytes) above the prepared inputs, as JSON."""
    side, name = spec.split(":")

    def prepare(w: int) -> Callable[[], object]:
        if side == "ours":
            return prepare_ours(name.removesuffix("+svd"), w, RANK if name.endswith("+svd") else None)
        return prepare_peft(name, w)

    prepare(64)()  # first use of each kernel allocates pools and caches: keep that out of the peak
    run = prepare(width)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak - before}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.width)
        return
    delta_bytes = args.width**2 * 4
    runs = [
        "ours:ties", "ours:dare_ties", "ours:ties+svd", "ours:dare_ties+svd",
        "peft:ties", "peft:dare_ties", "peft:ties_svd", "peft:dare_ties_svd",
    ]  # fmt: skip
    results = {}
    for spec in runs:
        out = subprocess.run(
            [sys.executable, __file__, "--child", spec, "--width", str(args.width)],
            check=True,
            capture_output=True,
            text=True,
            # large blocks are mmapped and unmapped on free, so peak RSS follows the live tensors (glibc
            # otherwise keeps freed blocks on its heap and the peak overstates what was alive at once)
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
        ).stdout
        results[spec] = json.loads(out.strip().splitlines()[-1])
        r = results[spec]
        print(f"{spec:22} {r['seconds'] * 1e3:9.1f} ms   peak +{r['peak_bytes'] / delta_bytes:5.2f} deltas")
    for name, peer in (("ties", "ties_svd"), ("dare_ties", "dare_ties_svd")):
        ours, svd, theirs = results[f"ours:{name}"], results[f"ours:{name}+svd"], results[f"peft:{peer}"]
        print(
            f"{name}: PEFT {peer} / loralab {theirs['seconds'] / ours['seconds']:.2f}x, "
            f"PEFT {peer} / loralab+svd {theirs['seconds'] / svd['seconds']:.2f}x (goal >= 1x); "
            f"peak memory loralab {ours['peak_bytes'] / delta_bytes:.2f} vs PEFT "
            f"{theirs['peak_bytes'] / delta_bytes:.2f} deltas (goal ~2)"
        )


if __name__ == "__main__":
    main()
