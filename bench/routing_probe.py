"""Probe: do a library's positive controls hold, and where does Arrow route? (models/README.md, "Why the
positive controls fail"). Dev split only. Trains hop 1 (A->B), hop 2 (B->C) and an oracle (A->C, `--oracle ac`
or `ac_cot`) into WORKDIR/lib/TAG (kept: a second run with the same TAG only evaluates), then prints each
expert alone, hop 1 scaled by 0.5 and 0.75, the 2- and 3-combination under Uniform and Arrow, and Arrow's
routing: the owning expert's mean coefficient at the last prompt token, over all tokens and at the decisive
positions (teacher-forced gold answer: the positions that predict the gold entity), how often it wins there,
and the same win rate with centred inputs or prototypes without the layers' mean-input direction.

    .venv/bin/python bench/routing_probe.py mlp6 --targets mlp --epochs 6
    .venv/bin/python bench/routing_probe.py cot12 --targets both --epochs 12 --oracle ac_cot --skip strength
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import cast

import torch

from loralab.combination import combine
from loralab.combination.routed import RoutedLinear
from loralab.evaluation import evaluate
from loralab.experts.config import ExpertConfig
from loralab.experts.train import train_expert
from loralab.models.chat import prompt_text
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl
from loralab.worlds.twohop import ensure_twohop

ap = argparse.ArgumentParser()
ap.add_argument("tag")
ap.add_argument("--targets", default="mlp")
ap.add_argument("--epochs", type=int, default=6)
ap.add_argument("--lr", type=float, default=3e-3)
ap.add_argument("--n", type=int, default=50)
ap.add_argument("--variant", default="RR")
ap.add_argument("--oracle", default="ac")
ap.add_argument("--r", type=int, default=16)
ap.add_argument("--alpha", type=int, default=32)
ap.add_argument("--base", default="default")
ap.add_argument("--workdir", type=Path, default=Path("loralab-work/bench"))
ap.add_argument("--skip", default="")
ap.add_argument("--temps", default="1")
args = ap.parse_args()
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

data = ensure_twohop(
    args.workdir / Path(f"data/{args.variant.lower()}{args.n}"), args.variant, args.n, seed=0, templates=50
)
lib = args.workdir / "lib" / args.tag
cfg = ExpertConfig(targets=args.targets, epochs=args.epochs, lr=args.lr, r=args.r, alpha=args.alpha)
EXPERTS = {"hop1": ["ab"], "hop2": ["bc"], "oracle": [args.oracle]}
for name, tasks in EXPERTS.items():
    if not (lib / name / "meta.json").is_file():
        t0 = time.time()
        train_expert(
            args.base, [data / f"{t}.train.jsonl" for t in tasks], lib / name, cfg, name, overwrite=True
        )
        print(f"trained {name} in {time.time() - t0:.0f}s", flush=True)
P = {k: lib / k for k in EXPERTS}
dev = {t: read_jsonl(data / f"{t}.dev.jsonl") for t in ("ab", "bc", "ac", "ac_cot")}
results: dict[str, object] = {"tag": args.tag, "args": vars(args)}


def cell(label: str, experts: list[str], method: str, task: str, **opts: object) -> float:
    mt = load_base(args.base)
    model = combine(mt, [P[e] for e in experts], method, **opts) if experts else mt[0]
    ev = evaluate(model, mt[1], dev[task], max_new_tokens=128 if task == "ac_cot" else 48, label=label)
    lo, hi = ev.ci
    print(
        f"{label:38s} {task:7s} {100 * ev.accuracy:5.1f} [{100 * lo:4.1f}, {100 * hi:4.1f}] n={ev.n}",
        flush=True,
    )
    results[f"{label}|{task}"] = ev.accuracy
    return ev.accuracy


_MEANS: dict[str, torch.Tensor] = {}


def module_means() -> dict[str, torch.Tensor]:
    """Mean input of every MLP/attention linear layer of the base over prompts of all tasks (mixed)."""
    if _MEANS:
        return _MEANS
    model, tok = load_base(args.base)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(mod: torch.nn.Module, a: tuple[torch.Tensor, ...], n: str) -> None:
        x = a[0][0].detach().float()
        sums[n] = sums.get(n, 0) + x.sum(0)
        counts[n] = counts.get(n, 0) + x.shape[0]

    hs = [
        m.register_forward_pre_hook(lambda mod, a, n=n: hook(mod, a, n))
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "layers" in n
    ]
    for t in ("ab", "bc", "ac"):
        for row in dev[t][-20:]:
            with torch.no_grad():
                model(
                    **tok(
                        prompt_text(tok, row["prompt"]) + row["answer"],
                        return_tensors="pt",
                        add_special_tokens=False,
                    )
                )
    for h in hs:
        h.remove()
    _MEANS.update({n: sums[n] / counts[n] for n in sums})
    return _MEANS


def routing(label: str, experts: list[str], task: str, owner: int, **opts: object) -> None:
    """Owner's mean coefficient at the last prompt token, over all tokens, and at the decisive positions
    (teacher-forced gold answer: the positions that predict the gold entity's tokens); plus the score gap."""
    model, tok = load_base(args.base)
    model = combine((model, tok), [P[e] for e in experts], "arrow", **opts)
    mods = [(n, m) for n, m in model.named_modules() if isinstance(m, RoutedLinear)]
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, a, n=n: inputs.__setitem__(n, a[0][0].detach()))
        for n, m in mods
    ]
    stats: dict[str, list[float]] = {
        "last": [],
        "all": [],
        "decisive": [],
        "win_dec": [],
        "gap_dec": [],
        "gap_mean": [],
        "win_dec_centered": [],
        "win_dec_deflated": [],
        "mean_share": [],
    }
    means = module_means()
    kinds: dict[str, list[float]] = {}
    for row in dev[task][:40]:
        prompt = prompt_text(tok, row["prompt"])
        ans = row["answer"]
        cut = ans.index(row["gold"]) if row["gold"] in ans else ans.rindex(row["gold"][:3])
        pre = tok(prompt + ans[:cut].rstrip(), add_special_tokens=False)["input_ids"]
        full = tok(prompt + ans[: cut + len(row["gold"])], add_special_tokens=False)["input_ids"]
        n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
        dec = list(range(len(pre) - 1, len(full) - 1))
        assert dec, row
        with torch.no_grad():
            model(input_ids=torch.tensor([full]))
        for n, m in mods:
            c = cast(torch.Tensor, m.last_coefficients).float()
            x = inputs[n].float()
            protos = cast(torch.Tensor, m.router.prototypes).float()
            s = (x @ protos.T).abs()  # T x E scores before softmax
            gap = s[:, owner] - torch.cat([s[:, :owner], s[:, owner + 1 :]], 1).max(1).values
            stats["last"].append(c[n_prompt - 1, owner].item())
            stats["all"].append(c[:, owner].mean().item())
            stats["decisive"].append(c[dec, owner].mean().item())
            stats["win_dec"].append((c[dec].argmax(1) == owner).float().mean().item())
            stats["gap_dec"].append((gap[dec] / s[dec].mean(1)).mean().item())
            xm = x.mean(0, keepdim=True)
            sm = (xm @ protos.T).abs()[0]
            stats["gap_mean"].append(
                ((sm[owner] - torch.cat([sm[:owner], sm[owner + 1 :]]).max()) / sm.mean()).item()
            )
            mu = means[n.replace(".base", "")] if n.replace(".base", "") in means else means[n]
            sc = ((x - mu) @ protos.T).abs()
            stats["win_dec_centered"].append((sc[dec].argmax(1) == owner).float().mean().item())
            mhat = mu / mu.norm()
            pd = protos - (protos @ mhat)[:, None] * mhat[None]
            pd = pd / pd.norm(dim=1, keepdim=True)
            sd = (x @ pd.T).abs()
            stats["win_dec_deflated"].append((sd[dec].argmax(1) == owner).float().mean().item())
            stats["mean_share"].append(((protos @ mhat) ** 2).mean().item())
            kinds.setdefault(n.rsplit(".", 1)[-1], []).append(c[dec, owner].mean().item())
    for h in hooks:
        h.remove()
    summary = {k: round(sum(v) / len(v), 3) for k, v in stats.items()}
    print(
        f"ROUTE {label:24s} {task:7s} owner={experts[owner]} chance={1 / len(experts):.3f} {summary}",
        flush=True,
    )
    print("   decisive coef per proj:", {k: round(sum(v) / len(v), 3) for k, v in kinds.items()}, flush=True)
    results[f"route|{label}|{task}"] = summary


skip = set(args.skip.split(","))
if "alone" not in skip:
    cell("base", [], "base", "ab")
    cell("hop1 alone", ["hop1"], "oracle", "ab")
    cell("hop2 alone", ["hop2"], "oracle", "bc")
    cell("oracle alone", ["oracle"], "oracle", args.oracle if args.oracle in dev else "ac")
    cell("oracle alone", ["oracle"], "oracle", "ac_cot")
if "strength" not in skip:
    for lam in (0.5, 0.75):
        cell(f"hop1 x{lam}", ["hop1"], "task_arithmetic", "ab", lam=lam)
if "route" not in skip:
    for T in [float(t) for t in args.temps.split(",")]:
        routing(f"arrow2 T={T}", ["hop1", "hop2"], "ab", 0, top_k=2, temperature=T)
        routing(f"arrow2 T={T}", ["hop1", "hop2"], "bc", 1, top_k=2, temperature=T)
        routing(f"arrow3 T={T}", ["hop1", "hop2", "oracle"], "ac_cot", 2, top_k=3, temperature=T)
        routing(f"arrow3 T={T}", ["hop1", "hop2", "oracle"], "ac", 2, top_k=3, temperature=T)
if "comb" not in skip:
    for method, opts in (("uniform", {}), ("arrow", {"top_k": 2})):
        cell(f"2-comb {method}", ["hop1", "hop2"], method, "ab", **opts)
        cell(f"2-comb {method}", ["hop1", "hop2"], method, "bc", **opts)
        cell(f"2-comb {method}", ["hop1", "hop2"], method, "ac_cot", **opts)
    for method, opts in (("uniform", {}), ("arrow", {"top_k": 3})):
        cell(f"3-comb {method}", ["hop1", "hop2", "oracle"], method, "ac_cot", **opts)
        cell(f"3-comb {method}", ["hop1", "hop2", "oracle"], method, "ac", **opts)
out = args.workdir / "results" / f"{args.tag}.json"
out.parent.mkdir(exist_ok=True)
out.write_text(json.dumps(results, indent=1, default=str))
print("wrote", out)
