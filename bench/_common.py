"""Shared bits of the benchmarks: the base to use, a dataset, the bf16 matmul peak, timing with repeats."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument(
        "--base", default="default", help="base preset, imported base or model folder (default: default)"
    )
    p.add_argument("--workdir", type=Path, default=Path("loralab-work/bench"), help="scratch folder")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    return p


def twohop_data(workdir: Path) -> Path:
    from loralab.worlds.twohop import ensure_twohop

    return ensure_twohop(workdir / "twohop-RR-n100-s0", "RR", 100, templates=12)


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bf16_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Measured bf16 matmul throughput of this machine, GFLOP/s (best of `repeats`)."""
    a = torch.randn(n, n, dtype=torch.bfloat16)
    b = torch.randn(n, n, dtype=torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9
