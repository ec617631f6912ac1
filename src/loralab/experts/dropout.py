"""A cheaper dropout for LoRA inputs on the CPU.

torch's Bernoulli sampling costs ~5 ms per 1M elements here, ~18% of a LoRA training step on the built-in
base (torch.profiler). Drawing 64-bit random words and reading them as four 16-bit uniforms is ~5x cheaper.
The drop probability is quantised to 1/65536 (p = 0.05 becomes 0.050003) and kept values are scaled by the
exact inverse of the quantised keep probability, so the expectation is unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FastDropout(nn.Module):
    """Inverted dropout from 16-bit uniforms; identity in eval mode or at p = 0."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability {p} not in [0, 1)")
        self.threshold = round(p * 65536)  # drop where the 16-bit uniform < threshold
        self.p = self.threshold / 65536

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        u16 = words.view(torch.int16)[:n].view(x.shape).to(torch.int32) + 32768  # uniform on [0, 65535]
        keep = u16 >= self.threshold
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


def use_fast_dropout(model: Any) -> int:
    """Swap every PEFT `lora_dropout` nn.Dropout on the CPU for `FastDropout`; returns how many."""
    swapped = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            weight = getattr(module, "weight", None)
            on_cpu = weight is None or weight.device.type == "cpu"
            if isinstance(drop, nn.Dropout) and drop.p > 0 and on_cpu:
                drops[name] = FastDropout(drop.p)
                swapped += 1
    return swapped
