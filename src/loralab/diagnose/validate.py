"""Is a diagnostic worth anything? Spearman's rho between a diagnostic score and the measured accuracy (or
retention) across the cells of a run, with a bootstrap interval. numpy and scipy only (reports import it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr


def spearman_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho of paired values and a 95% percentile bootstrap interval (pairs resampled; draws
    where either side is constant are skipped)."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    n = len(xs)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return {"n": n, "rho": None, "ci95": None}
    rho = float(spearmanr(xs, ys).statistic)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        k = rng.integers(0, n, n)
        if np.ptp(xs[k]) > 0 and np.ptp(ys[k]) > 0:
            draws.append(spearmanr(xs[k], ys[k]).statistic)
    ci = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if draws else None
    return {"n": n, "rho": rho, "ci95": ci}
