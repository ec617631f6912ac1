"""Library geometry: per adapted module and per pair of experts, how much the experts overlap.

For expert e in a module, Delta_e = s_e B_e A_e (out x in). Per module:

- `norm`: |Delta_e|_F; `concentration`: sigma_1^2 / sum_i sigma_i^2 of Delta_e (1 for a rank-1 change);
- `prototype_abs_cos`: |p_i . p_j| of the Arrow prototypes (top right singular vectors of Delta, unit norm,
  sign arbitrary): 1 when Arrow cannot tell the two experts apart on any input;
- `input_angles` / `output_angles`: the principal angles (radians, ascending) between the row spaces of A_i
  and A_j (what inputs the experts read) and between the column spaces of B_i and B_j (what they write);
  0 for a shared direction, pi/2 for orthogonal ones;
- `delta_cos`: <Delta_i, Delta_j>_F / (|Delta_i| |Delta_j|): +1 for proportional changes, -1 for opposite;
- `sign_conflict`: TIES's trim at `density` (the project's `magnitude_threshold`, ties kept) on both deltas,
  then the fraction of the entries kept by both whose signs differ (0 when none overlap).

All on float64 copies of the factors; the dense deltas are formed one module at a time for the trim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch

from loralab.combination.arrow import prototype
from loralab.combination.merges import keep_top_magnitude, magnitude_threshold
from loralab.diagnose.common import kind_of, layer_of
from loralab.experts.library import Expert

PAIR_KEYS = ("prototype_abs_cos", "delta_cos", "input_angle_mean", "output_angle_mean", "sign_conflict")


def pair_key(i: int, j: int) -> str:
    return f"{i}-{j}"


def basis(m: torch.Tensor) -> np.ndarray:
    """An orthonormal basis (columns) of the column space of `m`, at numerical rank (at least 1 column)."""
    u, s, _ = torch.linalg.svd(m.double(), full_matrices=False)
    tol = float(s[0]) * max(m.shape) * torch.finfo(torch.float64).eps if s.numel() else 0.0
    k = max(1, int((s > tol).sum()))
    return u[:, :k].numpy()


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Principal angles (radians, ascending) between the column spaces of `a` and `b` (scipy's
    `subspace_angles`, accurate for small angles as well as large ones)."""
    return sorted(float(t) for t in scipy.linalg.subspace_angles(basis(a), basis(b)))


def delta_gram(x: Expert, y: Expert, module: str) -> float:
    """<Delta_x, Delta_y>_F from the factors: s_x s_y sum((B_x^T B_y) * (A_x A_y^T))."""
    bb = x.B[module].double().T @ y.B[module].double()
    aa = x.A[module].double() @ y.A[module].double().T
    return float(x.scaling * y.scaling * (bb * aa).sum())


def spectrum(e: Expert, module: str) -> torch.Tensor:
    """Singular values of Delta_e = s B A, without forming it (A^T = Q R, so B A = (B R^T) Q^T)."""
    _, r = torch.linalg.qr(e.A[module].double().T)
    return torch.linalg.svdvals(e.scaling * e.B[module].double() @ r.T)


def sign_conflict(d1: torch.Tensor, d2: torch.Tensor, density: float) -> float:
    """Fraction of the entries kept by both TIES trims (top `density` by magnitude) with opposite signs."""
    kept = []
    for d in (d1, d2):
        t = d.float().clone()
        shape = (int(t.shape[0]), int(t.shape[1]))

        def rows_of(_: int, rows: slice, t: torch.Tensor = t) -> torch.Tensor:
            return t[rows].clone()

        kept.append(keep_top_magnitude(t, magnitude_threshold(rows_of, 0, shape, density)))
    both = (kept[0] != 0) & (kept[1] != 0)
    n = int(both.sum())
    return float(((kept[0] * kept[1]) < 0)[both].sum()) / n if n else 0.0


def module_geometry(experts: Sequence[Expert], module: str, density: float) -> dict[str, Any]:
    """Every measurement above for one module."""
    sv = [spectrum(e, module) for e in experts]
    norms = [float(s.square().sum().sqrt()) for s in sv]
    protos = [prototype(e.A[module], e.B[module]).double() for e in experts]
    deltas = [e.delta(module) for e in experts] if density > 0 else []
    pairs = {}
    for i in range(len(experts)):
        for j in range(i + 1, len(experts)):
            x, y = experts[i], experts[j]
            denom = norms[i] * norms[j]
            ia = principal_angles(x.A[module].T, y.A[module].T)
            oa = principal_angles(x.B[module], y.B[module])
            pairs[pair_key(i, j)] = {
                "prototype_abs_cos": abs(float(protos[i] @ protos[j])),
                "delta_cos": delta_gram(x, y, module) / denom if denom > 0 else 0.0,
                "input_angles": ia,
                "output_angles": oa,
                "input_angle_mean": float(np.mean(ia)),
                "output_angle_mean": float(np.mean(oa)),
                "sign_conflict": sign_conflict(deltas[i], deltas[j], density) if deltas else None,
            }
    return {
        "layer": layer_of(module),
        "kind": kind_of(module),
        "norm": norms,
        "concentration": [
            float(s[0] ** 2 / s.square().sum()) if float(s.square().sum()) > 0 else 0.0 for s in sv
        ],
        "pairs": pairs,
    }


def geometry(experts: Sequence[Expert], density: float = 0.2) -> dict[str, Any]:
    """The `geometry` section of diagnostics.json: per module, and averaged over modules per pair and per
    expert (angles in radians; `*_deg` in degrees)."""
    modules = sorted(experts[0].modules, key=lambda m: (layer_of(m), m))
    per_module = {m: module_geometry(experts, m, density) for m in modules}
    names = [e.name for e in experts]
    pairs: dict[str, dict[str, Any]] = {}
    for key in next(iter(per_module.values()))["pairs"] if per_module else []:
        i, j = (int(t) for t in key.split("-"))
        values = {k: [per_module[m]["pairs"][key][k] for m in modules] for k in PAIR_KEYS}
        pairs[key] = {
            "experts": [names[i], names[j]],
            **{k: float(np.mean(v)) for k, v in values.items() if all(x is not None for x in v)},
            "input_angle_min_deg": float(
                np.degrees(min(min(per_module[m]["pairs"][key]["input_angles"]) for m in modules))
            ),
        }
        pairs[key]["input_angle_mean_deg"] = float(np.degrees(pairs[key]["input_angle_mean"]))
        pairs[key]["output_angle_mean_deg"] = float(np.degrees(pairs[key]["output_angle_mean"]))
    per_expert = {
        n: {
            "norm": float(np.sqrt(sum(per_module[m]["norm"][i] ** 2 for m in modules))),
            "concentration_mean": float(np.mean([per_module[m]["concentration"][i] for m in modules])),
        }
        for i, n in enumerate(names)
    }
    return {
        "experts": names,
        "density": density,
        "modules": per_module,
        "pairs": pairs,
        "per_expert": per_expert,
        "summary": {
            k: float(np.mean([p[k] for p in pairs.values()]))
            if pairs and all(k in p for p in pairs.values())
            else None
            for k in PAIR_KEYS
        },
    }
