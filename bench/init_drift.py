"""Probe: how far did each expert's A move from its initialisation, and how much of its Arrow prototype lies in
the initial A's row space? (models/README.md, "Why the positive controls fail"). Re-creates PEFT's initial A
with the training seed, then compares it with hop1, hop2 and oracle in LIB
also the principal-angle cosines
between hop 1's and hop 2's A and the prototypes' |cos|.

    .venv/bin/python bench/init_drift.py loralab-work/bench/lib/mlp6 0 mlp
"""

import sys

import torch

from loralab.combination.arrow import prototype
from loralab.experts.config import ExpertConfig
from loralab.experts.library import load_expert
from loralab.experts.train import attach_lora
from loralab.models.load import load_base

lib = sys.argv[1]
E = {k: load_expert(f"{lib}/{k}") for k in ("hop1", "hop2", "oracle")}
model, tok = load_base("default")
torch.manual_seed(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
pm = attach_lora(model, ExpertConfig(targets=sys.argv[3] if len(sys.argv) > 3 else "mlp"))
A0 = {
    n.replace("base_model.model.", "").replace(".lora_A.default", ""): m.weight.detach().clone()
    for n, m in pm.named_modules()
    if n.endswith("lora_A.default")
}
rows = []
for mod in E["hop1"].modules:
    a0 = A0[mod]
    r = {}
    for k, e in E.items():
        A = e.A[mod].float()
        B = e.B[mod].float()
        r[f"dA/A0 {k}"] = ((A - a0).norm() / a0.norm()).item()
        q0, _ = torch.linalg.qr(a0.T)
        p = prototype(A, B)
        r[f"proto in A0 {k}"] = (q0.T @ p).norm().item() ** 2
    q1, _ = torch.linalg.qr(E["hop1"].A[mod].float().T)
    q2, _ = torch.linalg.qr(E["hop2"].A[mod].float().T)
    r["mean cos angle A1,A2"] = torch.linalg.svdvals(q1.T @ q2).mean().item()
    p1, p2, p3 = (prototype(E[k].A[mod], E[k].B[mod]) for k in E)
    r["|cos p1 p2|"] = abs((p1 @ p2).item())
    r["|cos p1 p3|"] = abs((p1 @ p3).item())
    rows.append(r)
for key in rows[0]:
    v = [r[key] for r in rows]
    print(f"{key:24s} mean {sum(v) / len(v):.3f}  min {min(v):.3f} max {max(v):.3f}")
