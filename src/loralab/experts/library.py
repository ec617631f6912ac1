"""Experts and libraries on disk. An expert is a PEFT adapter folder (+ loralab's `meta.json`, optional);
a library is a folder of experts with an `index.json`."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
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


# Config fields whose weight change is not s * B @ A (or that carry weights besides A and B): refused rather
# than combined wrongly (PEFT #3761). A field counts when it is set to anything but its plain-LoRA default.
UNSUPPORTED = {
    "use_dora": "DoRA (a magnitude vector)",
    "lora_bias": "a LoRA bias",
    "rank_pattern": "per-module ranks",
    "alpha_pattern": "per-module alphas",
    "modules_to_save": "fully trained extra modules",
    "trainable_token_indices": "trained token embeddings",
    "layer_replication": "replicated layers",
    # PEFT applies the weights only where these allow, so the adapter PEFT loads is not the one in the file
    "exclude_modules": "modules excluded from the weights' targets",
    "layers_to_transform": "a subset of the layers",
    "layers_pattern": "a subset of the layers",
    "target_parameters": "LoRA on raw parameters",
    "use_qalora": "QA-LoRA",
    "use_bdlora": "block-diagonal LoRA",
    "alora_invocation_tokens": "activated LoRA (aLoRA)",
    "megatron_config": "Megatron parallel layers",
    "kasa_config": "KaSA",
    "monteclora_config": "MonteCLoRA",
    "velora_config": "VeLoRA",
}
# initialisations that change the base weights too; PEFT converts them to plain LoRA on request
BASE_CHANGING_INIT = ("pissa", "olora", "corda", "loftq", "lora_ga")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def read_adapter_config(path: Path) -> dict[str, Any]:
    """`path/adapter_config.json` checked: a JSON object, a LoRA, a positive integer `r`, a finite positive
    `lora_alpha`, no variant loralab does not combine. Errors are one line naming the file and the field."""
    file = path / ADAPTER_CONFIG
    cfg = read_json(file)
    if not isinstance(cfg, dict):
        raise LoralabError(f"{file}: not a JSON object (a PEFT adapter config)")
    if cfg.get("peft_type", "LORA") != "LORA":
        raise LoralabError(f"{file}: peft_type {cfg.get('peft_type')!r} is not LORA")
    if "r" in cfg and not _positive_int(cfg["r"]):
        raise LoralabError(f"{file}: field r: must be a positive integer, not {cfg['r']!r}")
    alpha = cfg.get("lora_alpha", 1)
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float)
        or not math.isfinite(alpha)
        or alpha <= 0
    ):
        raise LoralabError(f"{file}: field lora_alpha: must be a positive number, not {alpha!r}")
    if not isinstance(cfg.get("use_rslora", False), bool):
        raise LoralabError(f"{file}: field use_rslora: must be true or false")
    for key, what in UNSUPPORTED.items():
        if cfg.get(key):
            raise LoralabError(f"{file}: field {key}: {what} is not supported; only plain LoRA is")
    if cfg.get("bias", "none") != "none":
        raise LoralabError(
            f"{file}: field bias: {cfg['bias']!r} trains base biases; only bias 'none' is supported"
        )
    init = cfg.get("init_lora_weights", True)
    if isinstance(init, str) and init.lower().startswith(BASE_CHANGING_INIT):
        raise LoralabError(
            f"{file}: field init_lora_weights: {init!r} changes the base weights too; convert the adapter to "
            "plain LoRA first (PEFT save_pretrained(path_initial_model_for_weight_conversion=...))"
        )
    return cfg


def check_tensors(
    path: Path, cfg: dict[str, Any], tensors: dict[str, torch.Tensor], check_finite: bool = True
) -> tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(r, A by module, B by module) of an adapter's tensors: only lora_A/lora_B pairs, A is r x in and B is
    out x r with the config's r, floating point, and (unless `check_finite` is off) no NaN or Inf."""
    file = path / ADAPTER_WEIGHTS
    A: dict[str, torch.Tensor] = {}
    B: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        for part, store in ((".lora_A.weight", A), (".lora_B.weight", B)):
            if key.endswith(part):
                store[_module_name(key[: -len(part)])] = value
                break
        else:
            raise LoralabError(
                f"{file}: tensor {key}: neither lora_A nor lora_B (a LoRA variant, unsupported)"
            )
    if not A or set(A) != set(B):
        raise LoralabError(f"{file}: no matching lora_A/lora_B pairs")
    first = sorted(A)[0]
    r = cfg.get("r", A[first].shape[0] if A[first].dim() == 2 else 0)
    for m in sorted(A):
        a, b = A[m], B[m]
        if a.dim() != 2 or b.dim() != 2:
            raise LoralabError(f"{file}: {m}: lora_A and lora_B must be matrices")
        if not (a.is_floating_point() and b.is_floating_point()):
            raise LoralabError(f"{file}: {m}: lora weights must be floating point, not {a.dtype}/{b.dtype}")
        if a.shape[0] != b.shape[1]:
            raise LoralabError(f"{file}: {m}: lora_A has rank {a.shape[0]}, lora_B has rank {b.shape[1]}")
        if a.shape[0] != r:
            raise LoralabError(
                f"{file}: {m}: tensors have rank {a.shape[0]}, {path / ADAPTER_CONFIG} field r says {r}"
            )
        if check_finite:
            for part, t in (("lora_A", a), ("lora_B", b)):
                if not bool(torch.isfinite(t).all()):
                    raise LoralabError(
                        f"{file}: {m}.{part} holds NaN or Inf values (a diverged training run?)"
                    )
    return int(r), A, B


def load_expert(path: Path | str, check_finite: bool = True) -> Expert:
    """Read a PEFT LoRA adapter folder, validated (`read_adapter_config`, `check_tensors`); any missing,
    corrupt or unsupported file is a one-line `LoralabError` naming the file and the field. `check_finite`
    False skips the scan for NaN and Inf (a pass over every weight)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise LoralabError(f"{path}: expert folder not found")
    cfg = read_adapter_config(path)
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise LoralabError(f"{path / ADAPTER_WEIGHTS}: file not found")
    try:
        tensors = load_file(str(path / ADAPTER_WEIGHTS))
    except Exception as exc:  # safetensors raises several classes for a damaged file
        raise LoralabError(f"{path / ADAPTER_WEIGHTS}: cannot read ({_first_line(exc)})") from None
    r, A, B = check_tensors(path, cfg, tensors, check_finite)
    alpha = float(cfg.get("lora_alpha", r))
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    meta = read_json(path / META) if (path / META).is_file() else {}
    if not isinstance(meta, dict):
        raise LoralabError(f"{path / META}: not a JSON object")
    return Expert(str(meta.get("name", path.name)), path, r, scaling, A, B, meta)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _module_name(key: str) -> str:
    """PEFT's saved key prefix `base_model.model.` stripped: the module's path inside the base model."""
    prefix = "base_model.model."
    return key[len(prefix) :] if key.startswith(prefix) else key


def refuse_repeats(paths: Sequence[Path], flag: str = "") -> None:
    """An expert given twice (also through a link, a library, or ./A-B/ for A-B) would count twice in a
    combination or be audited beside itself: one line naming it (and the `flag` it came through)."""
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            also = f" (as {seen[key]} and {p})" if str(seen[key]) != str(p) else ""
            raise LoralabError(f"{flag + ' ' if flag else ''}{p}: the same expert is given twice{also}")
        seen[key] = p


def distinct(experts: Sequence[Expert]) -> list[Expert]:
    """The experts, each named so that tables and probe labels tell them apart: a name (meta.json's `name`)
    that two experts share becomes each one's folder name, and where those are shared too, its path."""
    out = list(experts)
    for key in (lambda e: e.path.name, lambda e: str(e.path)):
        counts = Counter(e.name for e in out)
        out = [dataclasses.replace(e, name=key(e)) if counts[e.name] > 1 else e for e in out]
    return out


def answering_to(experts: Sequence[Expert], label: str) -> list[Expert]:
    """The experts a label in a data row (`expert` field) can mean: those with that name or folder name."""
    return [e for e in experts if label in (e.name, e.path.name)]


def recorded_base(experts: Sequence[Path | str | Expert]) -> str | None:
    """The base the experts were trained on, from their meta.json (`base`): a built-in or imported base's
    name when the folder is one (`named_base`), else the folder. None when no expert records one; experts
    that record different bases are an error (combining them is meaningless)."""
    from loralab.models.load import named_base

    found: dict[str, Path] = {}
    for e in experts:
        path = e.path if isinstance(e, Expert) else Path(e)
        meta = e.meta if isinstance(e, Expert) else _meta(path)
        base = meta.get("base")
        if isinstance(base, str) and base:
            found.setdefault(named_base(base) or base, path)
    if len(found) > 1:
        (a, pa), (b, pb) = list(found.items())[:2]
        raise LoralabError(f"--expert {pb}: trained on base {b}, but {pa} on {a}; pass --base to choose one")
    return next(iter(found), None)


def base_of(experts: Sequence[Path | str | Expert], base: str | None, why: str) -> str:
    """`base` if given, else the base the experts record; else one line asking for --base (`why`: what it is
    needed for). Never falls back to building the default base."""
    if base:
        return base
    recorded = recorded_base(experts)
    if recorded is None:
        told = "the experts do not record the base they were trained on" if experts else "no experts given"
        raise LoralabError(
            f"--base: needed {why} ({told}); pass --base default, a base name or a model folder"
        )
    from loralab.models.load import base_names

    if recorded not in base_names() and not Path(recorded).is_dir():
        raise LoralabError(f"--base: the experts' base {recorded} is not there any more; pass --base")
    return recorded


def _meta_or_empty(path: Path) -> dict[str, Any]:
    meta = read_json(path / META) if (path / META).is_file() else {}
    return meta if isinstance(meta, dict) else {}


def _meta(path: Path) -> dict[str, Any]:
    """An expert's meta.json ({} when it has none); a damaged one is an error, as in `load_expert`."""
    meta = read_json(path / META) if (path / META).is_file() else {}
    if not isinstance(meta, dict):
        raise LoralabError(f"{path / META}: not a JSON object")
    return meta


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
    index = {"kind": "library", "experts": _entries(Path(library))}
    write_json(Path(library) / INDEX, index)
    return index


def _checked_meta(sub: Path) -> dict[str, Any]:
    """An expert's meta.json for `library ls`: its weights there, the listed fields of the types loralab writes."""
    if not (sub / ADAPTER_WEIGHTS).is_file():
        raise LoralabError(f"{sub / ADAPTER_WEIGHTS}: file not found")
    meta = _meta(sub)
    for key, kinds in (("examples", int), ("final_loss", int | float), ("data", list)):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise LoralabError(f"{sub / META}: field {key}: {value!r} is not what loralab writes there")
    return meta


def _entries(library: Path, strict: bool = False) -> list[dict[str, Any]]:
    """The experts' listing rows; `strict` (what `library ls` shows) also checks each has its weights and a
    meta.json of the types loralab writes, where the index of a freshly trained library skips the siblings."""
    entries = []
    for sub in sorted(p for p in Path(library).iterdir() if (p / ADAPTER_CONFIG).is_file()):
        cfg = read_adapter_config(sub)
        meta = _checked_meta(sub) if strict else _meta_or_empty(sub)
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
    return entries


def list_library(library: Path | str) -> list[dict[str, Any]]:
    """The library's experts, read from its expert subfolders (what `index.json` records when it is current:
    an index left stale by a deleted expert, or damaged, does not decide what is listed; nothing is written)."""
    library = Path(library)
    if not library.is_dir():
        found = "a file, not a library folder" if library.exists() else "library folder not found"
        raise LoralabError(f"{library}: {found}")
    if (library / ADAPTER_CONFIG).is_file():
        raise LoralabError(f"{library}: an expert folder, not a library (its library is {library.parent})")
    entries = _entries(library, strict=True)
    if not entries:
        raise LoralabError(f"{library}: no experts in it (a library holds folders with {ADAPTER_CONFIG})")
    return entries
