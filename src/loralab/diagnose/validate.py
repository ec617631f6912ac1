"""Is a diagnostic worth anything? Spearman's rho between a diagnostic score and the measured accuracy (or
retention) across the cells of a run, with a bootstrap interval. numpy and scipy only (reports import it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

# A percentile bootstrap of rho over a handful of cells is degenerate: with 4 cells in a perfect order every
# resample that is not constant gives rho = 1 again, so the "interval" [1, 1] claims a certainty that 4
# points cannot give. Below these counts rho is reported without an interval.
MIN_CELLS_FOR_INTERVAL = 8
MIN_DISTINCT_FOR_INTERVAL = 3


def spearman_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Spearman's rho of paired values and a 95% percentile bootstrap interval (pairs resampled; draws
    where either side is constant are skipped). No rho under 3 pairs or with a constant side; rho without an
    interval (`ci95` None, `why` saying so) under MIN_CELLS_FOR_INTERVAL pairs or with fewer than
    MIN_DISTINCT_FOR_INTERVAL distinct values on a side."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    n = len(xs)
    if n < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return {"n": n, "rho": None, "ci95": None}
    rho = float(spearmanr(xs, ys).statistic)
    distinct = min(len(np.unique(xs)), len(np.unique(ys)))
    if n < MIN_CELLS_FOR_INTERVAL or distinct < MIN_DISTINCT_FOR_INTERVAL:
        why = (
            f"fewer than {MIN_CELLS_FOR_INTERVAL} cells"
            if n < MIN_CELLS_FOR_INTERVAL
            else f"fewer than {MIN_DISTINCT_FOR_INTERVAL} distinct values"
        )
        return {"n": n, "rho": rho, "ci95": None, "why": f"no interval: {why}"}
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        k = rng.integers(0, n, n)
        if np.ptp(xs[k]) > 0 and np.ptp(ys[k]) > 0:
            draws.append(spearmanr(xs[k], ys[k]).statistic)
    ci = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))] if draws else None
    return {"n": n, "rho": rho, "ci95": ci}
