"""Arrow routing (Ostapenko et al. 2024): per token and layer, route to the experts whose prototype lines up.

An expert's prototype in a layer is the top right singular vector of its B @ A (input space, unit norm, sign
arbitrary: scores use |x . p|). `exact` computes it by QR + a small SVD (mttl computes it exactly offline);
`power` runs PEFT's power iteration on A^T (B^T B) A from a seeded random start. Exact prototypes are cached
beside the adapter weights. GenKnowSub (Belofsky et al. 2025, as PEFT applies it) first subtracts the mean
A and the mean B of some "general" experts from every task expert.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import torch

from loralab.artifacts import shareable
from loralab.combination.registry import AT_LEAST_1, SEED, STEPS, TEMPERATURE
from loralab.combination.routed import ArrowRouter, Mix
from loralab.combination.routers import install_routed
from loralab.errors import LoralabError
from loralab.experts.library import ADAPTER_WEIGHTS, Expert, load_expert

PROTOTYPES = "arrow_prototypes.safetensors"
PrototypeMethod = Literal["exact", "power"]


def prototype(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """The top right singular vector of B @ A (unit norm, exact), without forming B @ A.

    A^T = Q R gives B A = (B R^T) Q^T; with B R^T = U S V^T, the right singular vectors of B A are Q V.
    """
    q, rr = torch.linalg.qr(A.double().T)
    _, _, vh = torch.linalg.svd(B.double() @ rr.T, full_matrices=False)
    p = q @ vh[0]
    return (p / p.norm()).float()


def power_prototype(A: torch.Tensor, B: torch.Tensor, iters: int = 15, seed: int = 0) -> torch.Tensor:
    """The top right singular vector of B @ A by `iters` power-iteration steps on v -> A^T (B^T B) A v from a
    standard normal start drawn with `seed` (PEFT's Arrow with `rng_seed=seed` starts from the same vector)."""
    A32, B32 = A.float(), B.float()
    gram = B32.T @ B32
    gen = torch.Generator(device=A32.device.type).manual_seed(seed)
    v = torch.randn(A32.shape[1], generator=gen, device=A32.device)
    v = v / (v.norm() + 1e-8)
    for _ in range(iters):
        w = A32.T @ (gram @ (A32 @ v))
        v = w / (w.norm() + 1e-8)
    return v


def prototypes(expert: Expert) -> dict[str, torch.Tensor]:
    """Every module's exact prototype for `expert`, cached beside its adapter weights (recomputed if they
    change)."""
    from safetensors.torch import load_file, save_file

    cache = expert.path / PROTOTYPES
    weights = expert.path / ADAPTER_WEIGHTS
    stamp = _stamp(weights) if weights.is_file() else None
    if stamp is not None and cache.is_file():
        try:
            stored = load_file(str(cache))
            if (
                stored.get("__stamp__") is not None
                and stored["__stamp__"].tolist() == stamp
                and all(m in stored for m in expert.modules)
            ):
                return {m: stored[m] for m in expert.modules}
        except Exception:  # a broken cache is just recomputed
            pass
    protos = {m: prototype(expert.A[m], expert.B[m]) for m in expert.modules}
    if stamp is None:
        return protos
    tmp = cache.with_name(f".{cache.name}.tmp")
    try:
        save_file({**protos, "__stamp__": torch.tensor(stamp)}, str(tmp))
        shareable(tmp)
        os.replace(tmp, cache)
    except OSError:  # a read-only library still works, just without the cache
        tmp.unlink(missing_ok=True)
    return protos


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns % (2**62)]


def subtract_general(experts: list[Expert], general: list[Expert]) -> list[Expert]:
    """GenKnowSub: each expert with the mean A and mean B of the `general` experts subtracted (new objects;
    equal ranks needed, as the subtraction is entry by entry)."""
    ranks = {e.r for e in experts + general}
    if len(ranks) > 1:
        raise LoralabError("--opt general: GenKnowSub subtracts factors entry by entry; ranks must be equal")
    out = []
    for e in experts:
        A = {m: e.A[m].float() - torch.stack([g.A[m].float() for g in general]).mean(0) for m in e.modules}
        B = {m: e.B[m].float() - torch.stack([g.B[m].float() for g in general]).mean(0) for m in e.modules}
        out.append(Expert(e.name, Path(f"{e.path}#gks"), e.r, e.scaling, A, B, e.meta))
    return out


def install_arrow(
    model: Any,
    experts: list[Expert],
    top_k: Annotated[int | None, AT_LEAST_1] = None,
    temperature: Annotated[float, TEMPERATURE] = 1.0,
    prototype_method: PrototypeMethod = "exact",
    iters: Annotated[int, STEPS] = 15,
    seed: Annotated[int, SEED] = 0,
    mix: Mix = "output",
    general: list[str] | None = None,
) -> Any:
    """Replace every adapted linear layer of `model` by a `RoutedLinear` with an Arrow router (in place).

    top_k None routes over all experts (mttl's default; PEFT's is 3), and so does a top_k above their number.
    Options are checked against their declared ranges by `coerce_options` before this runs.
    """
    if general:
        from loralab.experts.library import check_compatible

        gen_experts = []
        for p in general:
            try:
                gen_experts.append(load_expert(p))
            except LoralabError as exc:
                raise LoralabError(f"--opt general={p}: {exc}") from None
        check_compatible(experts + gen_experts, model)
        experts = subtract_general(experts, gen_experts)
    if prototype_method == "exact" and not general:
        protos = [prototypes(e) for e in experts]
    elif prototype_method == "exact":
        protos = [{m: prototype(e.A[m], e.B[m]) for m in e.modules} for e in experts]
    else:
        protos = [{m: power_prototype(e.A[m], e.B[m], iters, seed) for m in e.modules} for e in experts]
    k = min(top_k or len(experts), len(experts))
    return install_routed(
        model,
        experts,
        lambda module: ArrowRouter(torch.stack([p[module] for p in protos]), k, temperature),
        mix,
        "arrow",
    )
