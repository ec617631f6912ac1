"""Probe: how much margin does an expert hold its facts with, and how does it fall as the delta is scaled?
(issue 18, "facts learned with so little margin that a scaled delta loses them"; models/README.md).

For one expert and its one-hop dev questions, teacher-forced on the gold answer. Prints the delta's size
relative to the weight it changes (Frobenius norms: a small perturbation acts linearly, a large one need not),
then, at each strength lam (the expert's delta times lam in every adapted layer; lam = 0 is the base), at the
positions that predict the gold entity's tokens: the mean and median first-token margin (gold logit minus the
best other logit), the fraction of questions whose every gold token is the argmax ("kept", teacher-forced;
greedy decoding can only do worse) and the mean log-probability of the gold tokens; at lam = 0 also the
base's entropy (nats) at the first gold position. `--per-layer` adds each layer's delta alone at full
strength: if the layers' gains add up to the whole, the expert acts additively; if the whole is larger, its
layers work through each other. Dev split only.

    .venv/bin/python bench/margin_probe.py --base default --expert DIR/hop1 --data DATA --task ab --per-layer
    .venv/bin/python bench/margin_probe.py --base smollm2 --expert RUN/experts/hop1-... --data DATA
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import torch

from loralab.diagnose.common import layer_of, make_probe
from loralab.experts.library import load_expert
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def measure(model: torch.nn.Module, tok: object, rows: list[dict]) -> dict[str, float]:
    first_margin, kept, logp, entropy = [], [], [], []
    for row in rows:
        answer = row["answer"]
        # the diagnostics' own tokenisation: the chat prompt, then the answer up to the gold, with the gold's tokens
        probe = make_probe(tok, row, answer[: answer.index(row["gold"]) + len(row["gold"])])
        full_ids, start = probe.ids, probe.classes["answer"][0]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([full_ids])).logits[0].float()
        margins, hits, lps = [], [], []
        for pos in range(start, len(full_ids)):
            row_logits = logits[pos - 1]
            gold = full_ids[pos]
            other = row_logits.clone()
            other[gold] = -torch.inf
            margins.append((row_logits[gold] - other.max()).item())
            hits.append(bool(row_logits.argmax().item() == gold))
            lps.append(torch.log_softmax(row_logits, -1)[gold].item())
        p = torch.softmax(logits[start - 1], -1)
        entropy.append(-(p * torch.log(p.clamp_min(1e-30))).sum().item())
        first_margin.append(margins[0])
        kept.append(all(hits))
        logp.append(statistics.mean(lps))
    return {
        "first_margin": statistics.mean(first_margin),
        "first_margin_median": statistics.median(first_margin),
        "kept": sum(kept) / len(kept),
        "logp": statistics.mean(logp),
        "entropy": statistics.mean(entropy),
    }


def scaled(base: str, expert: Path, lam_of: dict[int, float]) -> tuple[torch.nn.Module, object]:
    """The base with the expert's delta times lam_of[layer] added to each adapted weight (0 where absent)."""
    model, tok = load_base(base)
    e = load_expert(expert)
    weights = dict(model.named_modules())
    for name in e.modules:
        lam = lam_of.get(layer_of(name), 0.0)
        if lam:
            module = weights[name]
            with torch.no_grad():
                module.weight += lam * e.delta(name).to(module.weight.dtype)
    model.eval()
    return model, tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the expert's base (preset name, imported name or folder)")
    ap.add_argument("--expert", type=Path, required=True, help="an expert folder")
    ap.add_argument(
        "--data", type=Path, required=True, help="a two-hop dataset folder (its dev split is used)"
    )
    ap.add_argument("--task", default="ab", choices=("ab", "bc"), help="the expert's own one-hop task")
    ap.add_argument("--n", type=int, default=100, help="dev questions (at most)")
    ap.add_argument("--lams", default="0,0.25,0.5,0.75,1", help="comma-separated strengths")
    ap.add_argument(
        "--per-layer",
        action="store_true",
        help="also each layer's delta alone at full strength: is the effect the sum of the layers' effects?",
    )
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    path = args.data / f"{args.task}.dev.jsonl"
    if not path.is_file():
        ap.error(f"--data {args.data}: no {args.task}.dev.jsonl")
    rows = read_jsonl(path)[: args.n]
    print(f"{args.expert.name} on {path} (n={len(rows)}), base {args.base}")
    print(
        "  lam   first-token margin (mean / median)   kept (teacher-forced)   mean log p(gold)   base entropy"
    )
    expert = load_expert(args.expert)
    layers = sorted({layer_of(n) for n in expert.modules})
    weights = dict(load_base(args.base)[0].named_modules())
    rel: dict[str, list[float]] = {}
    for name in expert.modules:
        w = weights[name].weight.float()
        rel.setdefault(name.rsplit(".", 1)[-1], []).append((expert.delta(name).norm() / w.norm()).item())
    sizes = ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in sorted(rel.items()))
    print(f"  the delta's size, mean ||s B A|| / ||W|| over layers: {sizes}")
    full: dict[str, float] = {}
    for lam in (float(x) for x in args.lams.split(",")):
        model, tok = scaled(args.base, args.expert, dict.fromkeys(layers, lam))
        m = measure(model, tok, rows)
        full = m if lam == 1 else full
        ent = f"{m['entropy']:.2f}" if lam == 0 else ""
        print(
            f"  {lam:4.2f}  {m['first_margin']:+7.2f} / {m['first_margin_median']:+7.2f}"
            f"              {100 * m['kept']:5.1f}%               {m['logp']:+7.2f}          {ent}",
            flush=True,
        )
    if args.per_layer:
        zero = measure(*scaled(args.base, args.expert, {}), rows)["first_margin"]
        gains = []
        print("  layer alone at full strength: first-token margin gain over the base, kept")
        for layer in layers:
            m = measure(*scaled(args.base, args.expert, {layer: 1.0}), rows)
            gains.append(m["first_margin"] - zero)
            print(f"    layer {layer:2d}: {gains[-1]:+6.2f}   {100 * m['kept']:5.1f}%", flush=True)
        if full:
            together = full["first_margin"] - zero
            print(f"  sum of the layers' gains {sum(gains):+6.2f}; all layers together {together:+6.2f}")


if __name__ == "__main__":
    main()
