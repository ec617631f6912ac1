"""Probe: is the task written in the base's layer inputs where the answer is decided? At the position that
predicts the gold entity's first token of hop-1 (ab) and hop-2 (bc) dev prompts, per adapted layer: a
nearest-centroid classifier on the centred inputs and a ridge classifier on the standardised inputs (each
fitted on the first half of the prompts of each task, tested on the other half) and, when a library of two
experts (hop1, hop2) is given, Arrow's choice between their prototypes on the same inputs. Chance is 0.5.

Without `--lib` it needs no expert: it reads the inputs of every MLP projection (gate_proj: the normed
residual stream; down_proj: the MLP's hidden activations), so several bases (built-in presets, imported bases
such as smollm2, or folders from `base_trial.py`) can be compared on the same prompts.

    .venv/bin/python bench/task_separability.py loralab-work/bench/data/rr50 --lib loralab-work/bench/lib/both6
    .venv/bin/python bench/task_separability.py loralab-work/bench/data/rr50 --base default --base smollm2
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from loralab.combination.arrow import prototype
from loralab.experts.library import load_expert
from loralab.models.chat import prompt_text
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def inputs(base: str, data: Path, modules: list[str] | None, n: int) -> dict[str, dict[int, torch.Tensor]]:
    """Per module: label -> (prompts x features) inputs at the position that predicts the gold's first token."""
    model, tok = load_base(base)
    names = modules or [
        name for name, _ in model.named_modules() if name.endswith(("mlp.gate_proj", "mlp.down_proj"))
    ]
    mods = {name: m for name, m in model.named_modules() if name in names}
    feats: dict[str, dict[int, list[torch.Tensor]]] = defaultdict(lambda: {0: [], 1: []})
    cur: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, a, name=name: cur.__setitem__(name, a[0][0].detach().float()))
        for name, m in mods.items()
    ]
    for label, task in ((0, "ab"), (1, "bc")):
        for row in read_jsonl(data / f"{task}.dev.jsonl")[:n]:
            answer = row["answer"]
            pre = prompt_text(tok, row["prompt"]) + answer[: answer.index(row["gold"])].rstrip()
            with torch.no_grad():
                model(input_ids=torch.tensor([tok(pre, add_special_tokens=False)["input_ids"]]))
            for name in mods:
                feats[name][label].append(cur[name][-1])
    for h in hooks:
        h.remove()
    return {name: {k: torch.stack(v) for k, v in by.items()} for name, by in feats.items()}


def centroid_accuracy(X: dict[int, torch.Tensor]) -> float:
    half = min(len(X[0]), len(X[1])) // 2
    c = {k: X[k][:half].mean(0) for k in X}
    mu = (c[0] + c[1]) / 2
    acc = []
    for k in X:
        t = X[k][half:] - mu
        d = torch.stack(
            [torch.nn.functional.cosine_similarity(t, (c[j] - mu)[None], dim=1) for j in (0, 1)], 1
        )
        acc.append((d.argmax(1) == k).float().mean().item())
    return sum(acc) / 2


def linear_accuracy(X: dict[int, torch.Tensor]) -> float:
    """A ridge classifier (labels -1/+1) fitted on the first half of each task's prompts, tested on the rest.

    Features are standardised with the fitting half's statistics; the ridge is fixed in advance at the mean
    eigenvalue of the fitting half's Gram matrix (no search, so no choice made on the tested half)."""
    half = min(len(X[0]), len(X[1])) // 2
    fit = torch.cat([X[0][:half], X[1][:half]]).double()
    y = torch.cat([-torch.ones(half), torch.ones(half)]).double()
    mu, sd = fit.mean(0), fit.std(0).clamp_min(1e-6)
    Z = (fit - mu) / sd
    gram = Z @ Z.T
    lam = gram.trace() / len(Z)
    w = Z.T @ torch.linalg.solve(gram + lam * torch.eye(len(Z), dtype=Z.dtype), y - y.mean())
    acc = []
    for k, sign in ((0, -1.0), (1, 1.0)):
        t = (X[k][half:].double() - mu) / sd
        acc.append(((t @ w) * sign > 0).double().mean().item())
    return sum(acc) / 2


def layer_of(name: str) -> str:
    parts = name.split(".")
    return f"{parts[parts.index('layers') + 1]}.{parts[-1]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a two-hop dataset folder with ab.dev.jsonl and bc.dev.jsonl")
    ap.add_argument("--base", action="append", default=[], help="a base (repeatable); default: default")
    ap.add_argument("--lib", type=Path, help="a library with hop1 and hop2 experts: adds Arrow's choice")
    ap.add_argument("--n", type=int, default=60, help="dev prompts per task (half fit, half test)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for task in ("ab", "bc"):
        if not (args.data / f"{task}.dev.jsonl").is_file():
            ap.error(f"{args.data}: no {task}.dev.jsonl (give a two-hop dataset folder)")
    if args.lib and not all((args.lib / k).is_dir() for k in ("hop1", "hop2")):
        ap.error(f"--lib {args.lib}: needs hop1 and hop2 expert folders")
    experts = [load_expert(args.lib / k) for k in ("hop1", "hop2")] if args.lib else []
    for base in args.base or ["default"]:
        feats = inputs(base, args.data, list(experts[0].modules) if experts else None, args.n)
        by_layer: dict[str, list[list[float]]] = defaultdict(lambda: [[], [], []])
        for name, X in feats.items():
            by_layer[layer_of(name)][0].append(centroid_accuracy(X))
            by_layer[layer_of(name)][1].append(linear_accuracy(X))
            if experts:
                P = torch.stack([prototype(e.A[name], e.B[name]) for e in experts])
                arrow = [((X[k] @ P.T).abs().argmax(1) == k).float().mean().item() for k in X]
                by_layer[layer_of(name)][2].append(sum(arrow) / 2)
        print(
            f"base {base}: layer.proj  centroid-acc  linear-acc"
            + ("  arrow-acc" if experts else "")
            + "  (chance 0.5)"
        )
        for layer, (a, b, c) in by_layer.items():
            line = f"  {layer:16s} {statistics.mean(a):.2f}          {statistics.mean(b):.2f}"
            print(line + (f"        {statistics.mean(c):.2f}" if c else ""))
        for col, label in ((0, "centroid"), (1, "linear")):
            means = [statistics.mean(v[col]) for v in by_layer.values()]
            print(
                f"  {label}: mean over layers {statistics.mean(means):.2f}, best {max(means):.2f}", flush=True
            )


if __name__ == "__main__":
    main()
