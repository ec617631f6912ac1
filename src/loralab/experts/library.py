"""Experts and libraries on disk. An expert is a PEFT adapter folder (+ loralab's `meta.json`, optional);
a library is a folder of experts with an `index.json`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.artifacts import META, read_json, write_json
from loralab.errors import LoralabError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
INDEX = "index.json"


@dataclass
class Expert:
    """One LoRA adapter read into memory: per adapted module, A (r x in), B (out x r) and the scaling."""

    name: str
    path: Path
    r: int
    scaling: float
    A: dict[str, torch.Tensor]
    B: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def modules(self) -> list[str]:
        return sorted(self.A)

    def delta(self, module: str) -> torch.Tensor:
        """scaling * B @ A, the weight change this expert makes to `module` (out x in)."""
        return self.scaling * (self.B[module].float() @ self.A[module].float())


def load_expert(path: Path | str) -> Expert:
    """Read a PEFT LoRA adapter folder; any missing or corrupt file is a one-line `LoralabError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise LoralabError(f"{path}: expert folder not found")
    cfg = read_json(path / ADAPTER_CONFIG)
    if cfg.get("peft_type", "LORA") != "LORA":
        raise LoralabError(f"{path / ADAPTER_CONFIG}: peft_type {cfg.get('peft_type')!r} is not LORA")
    # variants whose weight change is not s * B @ A are refused rather than combined wrongly (PEFT #3761)
    for flag, what in (("use_dora", "DoRA"), ("lora_bias", "a LoRA bias")):
        if cfg.get(flag):
            raise LoralabError(
                f"{path / ADAPTER_CONFIG}: {what} adapter ({flag}); only plain LoRA is supported"
            )
    for key in ("rank_pattern", "alpha_pattern"):
        if cfg.get(key):
            raise LoralabError(f"{path / ADAPTER_CONFIG}: per-module {key} is not supported")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise LoralabError(f"{path / ADAPTER_WEIGHTS}: file not found")
    try:
        tensors = load_file(str(path / ADAPTER_WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoralabError(f"{path / ADAPTER_WEIGHTS}: cannot read ({exc})") from exc
    A: dict[str, torch.Tensor] = {}
    B: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        for part, store in ((".lora_A.weight", A), (".lora_B.weight", B)):
            if key.endswith(part):
                store[_module_name(key[: -len(part)])] = value
    if not A or set(A) != set(B):
        raise LoralabError(f"{path / ADAPTER_WEIGHTS}: no matching lora_A/lora_B pairs")
    r = int(cfg.get("r", next(iter(A.values())).shape[0]))
    alpha = float(cfg.get("lora_alpha", r))
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    meta = read_json(path / META) if (path / META).is_file() else {}
    return Expert(meta.get("name", path.name), path, r, scaling, A, B, meta)


def _module_name(key: str) -> str:
    """PEFT's saved key prefix `base_model.model.` stripped: the module's path inside the base model."""
    prefix = "base_model.model."
    return key[len(prefix) :] if key.startswith(prefix) else key


def check_compatible(experts: list[Expert], model: Any) -> None:
    """Same target modules across experts, and every A/B shape fits the base's linear layer."""
    if not experts:
        raise LoralabError("no experts given")
    first = experts[0]
    for e in experts[1:]:
        if set(e.modules) != set(first.modules):
            only = sorted(set(e.modules) ^ set(first.modules))[0]
            raise LoralabError(f"{e.path}: targets other modules than {first.path} (e.g. {only})")
    layers = dict(model.named_modules())
    for e in experts:
        for m in e.modules:
            layer = layers.get(m)
            if not isinstance(layer, torch.nn.Linear):
                raise LoralabError(f"{e.path}: module {m} is not a linear layer of this base (other base?)")
            if e.A[m].shape[1] != layer.in_features or e.B[m].shape[0] != layer.out_features:
                raise LoralabError(
                    f"{e.path}: {m} has shape {tuple(e.B[m].shape[:1]) + tuple(e.A[m].shape[1:])}, base has "
                    f"{(layer.out_features, layer.in_features)} (adapter trained for another base?)"
                )


def write_index(library: Path) -> dict[str, Any]:
    """(Re)write `index.json`: one entry per expert subfolder."""
    entries = []
    for sub in sorted(p for p in Path(library).iterdir() if (p / ADAPTER_CONFIG).is_file()):
        cfg = read_json(sub / ADAPTER_CONFIG)
        meta = read_json(sub / META) if (sub / META).is_file() else {}
        entries.append(
            {
                "name": sub.name,
                "r": cfg.get("r"),
                "alpha": cfg.get("lora_alpha"),
                "targets": sorted(cfg.get("target_modules") or []),
                "data": meta.get("data"),
                "examples": meta.get("examples"),
                "final_loss": meta.get("final_loss"),
            }
        )
    index = {"kind": "library", "experts": entries}
    write_json(Path(library) / INDEX, index)
    return index


def list_library(library: Path | str) -> list[dict[str, Any]]:
    """The library's experts (from its index, rebuilt if missing)."""
    library = Path(library)
    if not library.is_dir():
        raise LoralabError(f"{library}: library folder not found")
    index = read_json(library / INDEX) if (library / INDEX).is_file() else write_index(library)
    return list(index["experts"])
