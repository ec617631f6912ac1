"""Merges in delta space: each takes the experts' dense deltas of one module and returns one delta."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from loralab.combine.registry import MethodSpec


def uniform(deltas: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of the experts' delta weights."""
    return torch.stack(list(deltas)).mean(dim=0)


UNIFORM = MethodSpec(
    name="uniform",
    kind="merge",
    description="mean of the experts' delta weights (no cross terms; not mttl's mean-of-A times mean-of-B)",
    formula="dW = (1/E) * sum_e s_e * B_e @ A_e",
    paper="Ostapenko et al. 2024 (mu-routing / uniform averaging)",
    fn=uniform,
)
