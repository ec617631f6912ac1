"""Content keys never change by accident: existing run folders must resume.

The keys below were computed by the runner before the plan moved to `experiments/plan.py`; the base's
identity is fixed (it holds the base folder's absolute path, which differs between machines), everything
else (dataset specs and generator versions, training files' bytes, LoRA configs, cells' methods,
options, files and decoding) is what a real run hashes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loralab.experiments.plan import plan
from loralab.experiments.spec import load_spec

SPEC = """
name: keys
bases: [default]
datasets:
  rr: {kind: twohop, variant: RR, triplets: 100}
  s0: {kind: setup, setup: setup-0, triplets: 100, bridge_triplets: 100}
  g: {kind: graph, variant: disjoint, paths: 100}
experts:
  ab: {train: [{dataset: rr, task: ab}], lora: {targets: mlp, r: 4, alpha: 8}}
  bc: {train: [{dataset: rr, task: bc}], lora: {targets: mlp, r: 4, alpha: 8}}
  l1: {train: [{dataset: s0, file: lora1.train.jsonl}], lora: {r: 4, alpha: 8, targets: mlp}}
libraries:
  pair: [ab, bc]
  one: [l1]
methods:
  - name: uniform
  - name: ties
    options: {density: 0.5}
evaluations:
  - {dataset: rr, split: test, prompting: cot}
  - {dataset: s0, split: test, prompting: direct, triplets: first-half}
seeds: [0]
"""

GOLDEN = {
    "datasets": ["5b527df460cb", "b08732fe416f", "df9fa13ff012"],
    "experts": ["bf7c89ed741e", "c3453eb536c8", "ee37102e1814"],
    "cells": [
        "04be48756c986869",
        "0b2871fe61885ce0",
        "3a4e8b3fc7130066",
        "4ac4be3d935e7095",
        "60c07a62c50a3657",
        "6b9a53fa6444c31a",
        "78f45c57884ecdc5",
        "7cccd788b199cf05",
        "8ddb78be45b11e0f",
        "9426de547d9df2e5",
        "a42e29dfdf735c9c",
        "a672c8d9c5e35663",
        "c102b3c9f3b0046b",
        "f72c357f040ea5b0",
    ],
}


def test_keys_are_those_of_earlier_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[plan.__module__]
    monkeypatch.setattr(module, "base_identity", lambda base: f"{base}:fixed")
    spec_file = tmp_path / "keys.yaml"
    spec_file.write_text(SPEC)
    p = plan(load_spec(spec_file, "test"), tmp_path / "work", "test")
    keys = {
        "datasets": sorted(d.key for d in p.datasets.values()),
        "experts": sorted(e.key for e in p.experts.values()),
        "cells": sorted(c.key for c in p.cells),
    }
    assert keys == GOLDEN


def test_a_finished_expert_is_found_under_another_specs_member_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ab` of one spec is `hop1` of another when base, training bytes and recipe agree: same key, one
    training. A folder of that key without meta.json (training cut off) is not taken."""
    module = sys.modules[plan.__module__]
    monkeypatch.setattr(module, "base_identity", lambda base: f"{base}:fixed")
    spec_file = tmp_path / "keys.yaml"
    spec_file.write_text(SPEC)
    work = tmp_path / "work"
    first = plan(load_spec(spec_file, "test"), work, "test")
    ab = next(e for e in first.experts.values() if e.name == "ab")
    renamed = work / "experts" / f"hop1-{ab.key}"
    renamed.mkdir(parents=True)
    again = plan(load_spec(spec_file, "test"), work, "test")
    assert next(e for e in again.experts.values() if e.name == "ab").path == ab.path  # unfinished: not taken
    (renamed / "meta.json").write_text("{}")
    again = plan(load_spec(spec_file, "test"), work, "test")
    found = {e.name: e for e in again.experts.values()}
    assert found["ab"].path == renamed and found["ab"].done()
    assert found["bc"].path == work / "experts" / f"bc-{found['bc'].key}"  # other keys keep their own folder
