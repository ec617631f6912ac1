"""The lab's figure: Theorem 2's coefficients measured at width m against the kernel's prediction."""

from __future__ import annotations

import os
from pathlib import Path

from loralab.theory.lab import LabResult


def save_figure(result: LabResult, path: Path) -> Path:
    """Two panels over the m sweep: mean a1, a2 measured vs predicted; the relative error (mean and max over
    chains) with an m^-1/2 guide. Written as PNG, atomically (temp file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result.sweep
    ms = [p.m for p in pts]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, colour in (("a1", "tab:blue"), ("a2", "tab:orange")):
        measured = [getattr(p, f"{key}_measured") for p in pts]
        left.plot(ms, measured, "o-", color=colour, label=f"{key} measured (mean)")
        left.axhline(
            getattr(pts[0], f"{key}_predicted"), color=colour, ls="--", label=f"{key} kernel, eq. (9)"
        )
    left.set(xlabel="MLP width m", ylabel="coefficient on the two-hop prompt")
    left.set_xscale("log", base=2)
    left.legend(fontsize=8)
    right.plot(ms, [p.rel_error_mean for p in pts], "o-", label="mean")
    right.plot(ms, [p.rel_error_max for p in pts], "s-", label="max")
    # on a log axis only where an error is above zero (a world this small can be matched exactly)
    positive = any(p.rel_error_max > 0 for p in pts)
    if positive:
        guide = [pts[-1].rel_error_mean * (pts[-1].m / m) ** 0.5 for m in ms]
        right.plot(ms, guide, "k:", label="∝ m^-1/2")
    right.set(
        yscale="log" if positive else "linear",
        xlabel="MLP width m",
        ylabel="|measured - predicted| / predicted",
    )
    right.set_xscale("log", base=2)
    right.legend(fontsize=8)
    composed = ", ".join(f"{p.composed:.2f}" for p in pts)
    c = result.config
    fig.suptitle(
        f"Theorem 2: summed adapters' coefficients on X REL1 REL2 (d={c.d}, |X|={c.entities}, |R|={c.relations}, "
        f"{pts[0].n} chains)\nfraction answering the composed z, by m: {composed}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
