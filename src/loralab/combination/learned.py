"""Learned combinations: a few weights fitted on a little target-task data (label them so in reports).

`cat_learned` (LoRA Soups, Prabhakar et al. 2024): one weight per layer and expert, trained by gradient
descent with the base and the experts frozen; the result is the exact weighted sum of the deltas per layer.
`lorahub` (Huang et al. 2024): one weight per expert, searched without gradients by nevergrad's NGOpt in
[-1.5, 1.5] from 0, minimising the few-shot loss + 0.05 mean|w|; the weights scale A and B (factor space).
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Annotated, Any

import torch
from torch import nn

from loralab.combination.lora import Lora, concat
from loralab.combination.merges import check_equal_ranks
from loralab.combination.registry import AT_LEAST_1, EPOCHS, LEARNING_RATE, SEED, STEPS
from loralab.combination.routed import FixedRouter, RoutedLinear
from loralab.combination.routers import install_routed
from loralab.errors import LoralabError
from loralab.experts.library import Expert
from loralab.progress import progress

Learned = tuple[dict[str, Lora], dict[str, Any]]


def _examples(tokenizer: Any, data: str, limit: int | None = None) -> list[tuple[list[int], list[int]]]:
    from loralab.experts.train import encode
    from loralab.worlds.jsonl import read_jsonl

    if not data:
        raise LoralabError(
            "--opt data: learned methods need target-task data (a JSONL file of prompt/answer)"
        )
    if tokenizer is None:
        raise LoralabError("learned methods need the base's tokenizer: pass the base as a folder or preset")
    rows = read_jsonl(Path(data))
    if limit is not None:
        rows = rows[:limit]
    return encode(tokenizer, rows, 512, data)


def _loss(model: Any, examples: list[tuple[list[int], list[int]]], idx: list[int], pad: int) -> torch.Tensor:
    from loralab.experts.train import collate

    device = next(model.parameters()).device
    batch = collate(examples, idx, pad, device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return model(**batch).loss


def _uninstall(model: Any, modules: list[str]) -> None:
    for module in modules:
        parent_name, _, child = module.rpartition(".")
        parent = model.get_submodule(parent_name)
        routed = getattr(parent, child)
        if isinstance(routed, RoutedLinear):
            setattr(parent, child, routed.base)


def cat_learned(
    model: Any,
    experts: list[Expert],
    tokenizer: Any = None,
    data: str = "",
    epochs: Annotated[int, EPOCHS] = 3,
    lr: Annotated[float, LEARNING_RATE] = 0.05,
    batch_size: Annotated[int, AT_LEAST_1] = 16,
    seed: Annotated[int, SEED] = 0,
) -> Learned:
    """Per-layer, per-expert weights (from 1) trained on `data`; returns the weighted concatenation per layer."""
    examples = _examples(tokenizer, data)
    modules = experts[0].modules
    routers: dict[str, FixedRouter] = {}

    def router(module: str) -> nn.Module:
        routers[module] = FixedRouter(torch.ones(len(experts)), trainable=True)
        return routers[module]

    for p in model.parameters():
        p.requires_grad_(False)
    install_routed(model, experts, router, "output", "cat_learned")
    params = [r.weights for r in routers.values()]
    opt = torch.optim.Adam(params, lr=lr)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(seed)
    from loralab.experts.train import bucketed_batches

    losses: list[float] = []
    try:
        with progress() as bar:
            batches = [bucketed_batches(examples, batch_size, rng) for _ in range(epochs)]
            task = bar.add_task("fitting CAT weights", total=sum(map(len, batches)))
            for epoch in batches:
                for idx in epoch:
                    loss = _loss(model, examples, idx, pad)
                    loss.backward()
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    losses.append(loss.detach().item())
                    bar.update(task, advance=1)
    finally:
        _uninstall(model, modules)
    merged = {}
    weights = {}
    for m in modules:
        w = routers[m].weights.detach().float().tolist()
        weights[m] = w
        merged[m] = concat([Lora(e.A[m], e.B[m], e.scaling) for e in experts], w)
    return merged, {"weights": weights, "final_loss": sum(losses[-5:]) / max(1, len(losses[-5:]))}


def lorahub(
    model: Any,
    experts: list[Expert],
    tokenizer: Any = None,
    data: str = "",
    shots: Annotated[int, STEPS] = 5,
    budget: Annotated[int, STEPS] = 40,
    seed: Annotated[int, SEED] = 0,
) -> Learned:
    """One weight per expert found by NGOpt; merged in factor space: (sum w_e B_e)(sum w_e s_e A_e)."""
    import nevergrad as ng

    modules = experts[0].modules
    for m in modules:
        check_equal_ranks([Lora(e.A[m], e.B[m], e.scaling) for e in experts], "lorahub")
    examples = _examples(tokenizer, data, shots)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    layers = {m: model.get_submodule(m) for m in modules}
    original = {m: layer.weight.detach().clone() for m, layer in layers.items()}

    def merge(w: list[float]) -> dict[str, Lora]:
        out = {}
        for m in modules:
            A = sum(wi * e.scaling * e.A[m].float() for wi, e in zip(w, experts, strict=True))
            B = sum(wi * e.B[m].float() for wi, e in zip(w, experts, strict=True))
            assert isinstance(A, torch.Tensor) and isinstance(B, torch.Tensor)
            out[m] = Lora(A, B, 1.0)
        return out

    def objective(w: Any) -> float:
        w = [float(x) for x in w]
        with torch.no_grad():
            for m, lora in merge(w).items():
                layers[m].weight.copy_(original[m] + lora.delta().to(original[m].dtype))
            loss = float(_loss(model, examples, list(range(len(examples))), pad))
        return loss + 0.05 * sum(abs(x) for x in w) / len(w)

    param = ng.p.Array(init=[0.0] * len(experts)).set_bounds(-1.5, 1.5)
    param.random_state.seed(seed)
    optimizer = ng.optimizers.NGOpt(parametrization=param, budget=budget)
    best = float("inf")
    try:
        with progress() as bar, warnings.catch_warnings():
            # NGOpt may pick scipy's COBYLA, which warns about its own step sizes on every run (not ours to fix)
            warnings.filterwarnings("ignore", message=".*RHOEND.*")
            task = bar.add_task("LoraHub search", total=budget)
            for _ in range(budget):
                cand = optimizer.ask()
                value = objective(cand.value)
                optimizer.tell(cand, value)
                best = min(best, value)
                bar.update(task, advance=1)
    finally:
        with torch.no_grad():
            for m, layer in layers.items():
                layer.weight.copy_(original[m])
    w = [float(x) for x in optimizer.provide_recommendation().value]
    return merge(w), {"weights": w, "best_objective": best}
