"""Probe: is the task written in the base's layer inputs where the answer is decided? At the position that
predicts the gold entity's first token of 60 hop-1 (ab) and 60 hop-2 (bc) dev prompts, per adapted layer: a
nearest-centroid classifier on the centred inputs (fit on 30 prompts per task, tested on the other 30) against
Arrow's choice between the two experts' prototypes on the same inputs. Chance is 0.5.

    .venv/bin/python bench/task_separability.py loralab-work/bench/lib/both6 loralab-work/bench/data/rr50
"""

import sys
from collections import defaultdict

import torch

from loralab.combination.arrow import prototype
from loralab.experts.library import load_expert
from loralab.models.chat import prompt_text
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl

torch.set_num_threads(1)
lib, data = sys.argv[1], sys.argv[2]
E = [load_expert(f"{lib}/{k}") for k in ("hop1", "hop2")]
model, tok = load_base("default")
mods = {n: m for n, m in model.named_modules() if n in E[0].modules}
feats = defaultdict(lambda: {0: [], 1: []})
cur = {}
hs = [
    m.register_forward_pre_hook(lambda mod, a, n=n: cur.__setitem__(n, a[0][0].detach().float()))
    for n, m in mods.items()
]
for label, task in ((0, "ab"), (1, "bc")):
    for row in read_jsonl(f"{data}/{task}.dev.jsonl")[:60]:
        prompt = prompt_text(tok, row["prompt"])
        ans = row["answer"]
        cut = ans.index(row["gold"])
        pre = tok(prompt + ans[:cut].rstrip(), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            model(input_ids=torch.tensor([pre]))
        for n in mods:
            feats[n][label].append(cur[n][-1])  # the position that predicts the gold entity's first token
for h in hs:
    h.remove()
by_layer = defaultdict(lambda: [[], []])
for n in mods:
    X = {k: torch.stack(v) for k, v in feats[n].items()}
    c = {k: X[k][:30].mean(0) for k in X}
    acc = []
    for k in X:
        t = X[k][30:]
        mu = (c[0] + c[1]) / 2
        d = torch.stack(
            [torch.nn.functional.cosine_similarity(t - mu, c[j][None] - mu, dim=1) for j in (0, 1)], 1
        )
        acc.append((d.argmax(1) == k).float().mean().item())
    P = torch.stack([prototype(e.A[n], e.B[n]) for e in E])
    arrow = [((X[k] @ P.T).abs().argmax(1) == k).float().mean().item() for k in X]
    layer = n.split(".")[2] + "." + n.rsplit(".", 1)[-1]
    by_layer[layer][0].append(sum(acc) / 2)
    by_layer[layer][1].append(sum(arrow) / 2)
print("layer.proj       centroid-acc  arrow-acc  (chance 0.5)")
for k, (a, b) in by_layer.items():
    print(f"{k:16s} {sum(a) / len(a):.2f}          {sum(b) / len(b):.2f}")
