"""Shared offline fixtures: the `test` built-in base (2 layers, hidden 32) in a temporary cache."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
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


def loralab_process(
    spec: Path, workdir: Path, *extra: str, kill_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`loralab run SPEC --workdir WORKDIR --no-probe EXTRA...` in a child process; `kill_at` sets
    LORALAB_KILL_AT (`loralab.faults`: the child SIGKILLs itself there)."""
    env = dict(os.environ)
    env.pop("LORALAB_KILL_AT", None)
    if kill_at:
        env["LORALAB_KILL_AT"] = kill_at
    # the familiarity probe has its own tests (tests/test_probes.py)
    cmd = [sys.executable, "-m", "loralab.cli", "run", str(spec), "--workdir", str(workdir), "--no-probe"]
    return subprocess.run([*cmd, *extra], env=env, capture_output=True, text=True, timeout=600, check=False)


def stored_results(workdir: Path) -> list[tuple[object, ...]]:
    """Every stored cell with its example outputs, in a canonical order."""
    con = sqlite3.connect(workdir / "results.sqlite")
    try:
        return con.execute(
            "SELECT c.key, c.method, c.n, c.correct, e.example_id, e.task, e.output, e.correct "
            "FROM cells c JOIN examples e ON e.cell_id = c.id ORDER BY c.key, e.task, e.example_id"
        ).fetchall()
    finally:
        con.close()


def cell_count(workdir: Path) -> tuple[int, int]:
    """(stored cells, distinct keys among them)."""
    con = sqlite3.connect(workdir / "results.sqlite")
    try:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT key) FROM cells").fetchone()
    finally:
        con.close()
    return int(total), int(distinct)


def adapter_hashes(workdir: Path) -> dict[str, str]:
    """Expert folder -> hash of its adapter weights."""
    return {
        p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((workdir / "experts").glob("*/adapter_model.safetensors"))
    }


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
