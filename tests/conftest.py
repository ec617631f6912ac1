"""Shared offline fixtures: the `test` built-in base (2 layers, hidden 32) in a temporary cache."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

os.environ["LORALAB_CACHE"] = tempfile.mkdtemp(prefix="loralab-test-cache-")
# the test models are tiny: one thread is as fast, and two threads collapse when other jobs share the cores
# (OpenMP barrier waits; ../shared/notes/machine-facts.md). Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_base() -> Path:
    """The `test` base preset, built once per session (a few seconds)."""
    from loralab.models.tiny import ensure_built

    return ensure_built("test")


@pytest.fixture(scope="session")
def twohop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loralab.worlds.twohop import build_twohop

    # 12 of the 50 templates per relation (9 train, 1 dev, 2 test per triplet) keep the training fixtures quick
    folder = tmp_path_factory.mktemp("data") / "rr"
    return build_twohop(folder, "RR", n_triplets=6, templates=12, dev_templates=1, test_templates=2, seed=0)


@pytest.fixture(scope="session")
def trained_expert(tiny_base: Path, twohop_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loralab.experts.config import ExpertConfig
    from loralab.experts.train import train_expert

    out = tmp_path_factory.mktemp("lib") / "A-B"
    return train_expert(
        tiny_base, [twohop_dir / "ab.train.jsonl"], out, ExpertConfig(r=4, epochs=1, batch_size=8)
    )


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the console script in-process; return its exit status."""
    from loralab.cli import main

    monkeypatch.setattr(sys, "argv", ["loralab", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def make_lora_folder(
    path: Path, base_model: Any, targets: list[str], r: int, seed: int, alpha: float = 8.0
) -> Path:
    """A non-zero PEFT adapter (init_lora_weights=False) saved to `path`."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, init_lora_weights=False)
    model = get_peft_model(base_model, cfg)
    model.save_pretrained(path)
    model.unload()
    return path
