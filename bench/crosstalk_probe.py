"""Probe: does an expert's edit act on the other relation's questions, and which edit wins in a merge?
(issue 18; models/README.md, "Dilution removed, interference remains"). Dev split only.

For a library folder holding `hop1` (A->B) and `hop2` (B->C) and their two-hop dataset: what each model
answers on the one-hop dev questions, sorted by the first match in the output with the subject's own name
removed: the gold, another person of the dataset (an A->B-type answer), a city of the dataset (a B->C-type
answer), or other. Rows: the base, each expert alone on the *other* expert's questions, and the Uniform
merge on both.

    .venv/bin/python bench/crosstalk_probe.py LIB DATA --base default
"""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path
from typing import Any

import torch

from loralab.combination import combine
from loralab.evaluation import evaluate
from loralab.models.load import load_base
from loralab.worlds.jsonl import read_jsonl


def sort_answers(rows: list[dict[str, Any]], outputs: list[str], people: set[str], cities: set[str]) -> str:
    counts: collections.Counter[str] = collections.Counter()
    for row, output in zip(rows, outputs, strict=True):
        out = output.replace(row["a"] if row["task"] == "ab" else row["b"], "")
        if row["gold"] in out:
            counts["gold"] += 1
        elif any(p in out for p in people):
            counts["person"] += 1
        elif any(c in out for c in cities):
            counts["city"] += 1
        else:
            counts["other"] += 1
    return ", ".join(f"{k} {counts[k]}" for k in ("gold", "person", "city", "other"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("library", type=Path, help="a folder with hop1/ and hop2/")
    ap.add_argument("data", type=Path, help="their two-hop dataset folder (dev split used)")
    ap.add_argument("--base", default="default")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    ab, bc = (read_jsonl(args.data / f"{t}.dev.jsonl") for t in ("ab", "bc"))
    train = {t: read_jsonl(args.data / f"{t}.train.jsonl") for t in ("ab", "bc")}
    people = {r["a"] for r in train["ab"]} | {r["b"] for r in train["ab"]}
    cities = {r["c"] for r in train["bc"]}
    runs: tuple[tuple[str, list[str], list[dict[str, Any]]], ...] = (
        ("base on B->C", [], bc),
        ("hop1 alone on B->C", ["hop1"], bc),
        ("hop2 alone on A->B", ["hop2"], ab),
        ("Uniform on A->B", ["hop1", "hop2"], ab),
        ("Uniform on B->C", ["hop1", "hop2"], bc),
    )
    for label, experts, rows in runs:
        model, tok = load_base(args.base)
        if experts:
            model = combine((model, tok), [args.library / e for e in experts], "uniform")
        result = evaluate(model, tok, rows, 48, label=label)
        outputs = [r["output"] for r in result.rows]
        print(f"{label:20s} n={result.n}: {sort_answers(rows, outputs, people, cities)}", flush=True)


if __name__ == "__main__":
    main()
