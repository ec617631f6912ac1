"""Load any base: a base preset (built on first use), an imported base or a local Hugging Face causal-LM folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from loralab.errors import LoralabError, did_you_mean


def pick_device(device: str | None = None) -> torch.device:
    """`device` if given (cpu, cuda, cuda:N or mps, one that this machine has), else CUDA when present, else CPU.
    Anything else is one line naming `--device`."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        chosen = None
    if chosen is not None and chosen.type == "mps":  # Apple silicon
        if not torch.backends.mps.is_available():
            raise LoralabError(f"--device {device}: no MPS device on this machine (use cpu)")
        return chosen
    if chosen is None or chosen.type not in ("cpu", "cuda"):
        raise LoralabError(f"--device {device}: choose cpu, cuda, cuda:N or mps")
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise LoralabError(f"--device {device}: no CUDA device on this machine (use cpu)")
        if chosen.index is not None and chosen.index >= count:
            raise LoralabError(
                f"--device {device}: this machine has {count} CUDA device(s), 0 to {count - 1}"
            )
    return chosen


def base_names() -> tuple[str, ...]:
    """The names `--base` accepts besides a folder: base presets, then importable bases."""
    from loralab.models.importer import IMPORTS
    from loralab.models.tiny import BASE_PRESETS

    return (*BASE_PRESETS, *IMPORTS)


def named_base(folder: str | Path) -> str | None:
    """The built-in or imported base whose cache folder `folder` is, else None. Matched by the folder's name
    (a built-in base's name carries the hash of its config), so a moved cache still matches and a base preset
    whose definition has changed since does not."""
    from loralab.models.importer import IMPORTS, imported_dir
    from loralab.models.tiny import BASE_PRESETS, base_preset_dir

    path = Path(folder)
    for name in BASE_PRESETS:
        if path.name == base_preset_dir(name).name:
            return name
    for name in IMPORTS:
        if path.name == imported_dir(name).name and path.parent.name == imported_dir(name).parent.name:
            return name
    return None


def resolve_base(base: str | Path) -> Path:
    """A base preset name resolves to its cached folder (built if missing), an importable base's name to its
    imported folder (never imported implicitly); anything else must be a model folder."""
    from loralab.models.importer import IMPORTS, imported_dir, is_imported
    from loralab.models.tiny import BASE_PRESETS, ensure_built

    if isinstance(base, str) and base in BASE_PRESETS:
        return ensure_built(base)
    if isinstance(base, str) and base in IMPORTS:
        if not is_imported(base):
            raise LoralabError(f"--base {base}: not imported yet; run `loralab base import {base}`")
        return imported_dir(base)
    if not str(base).strip():
        raise LoralabError(f"--base '': name a base ({', '.join(base_names())}) or a model folder")
    path = Path(base)
    if not path.is_dir():
        names = ", ".join(base_names())
        hint = did_you_mean(base, base_names())
        raise LoralabError(
            f"--base {base}: neither a built-in or imported base ({names}) nor a model folder{hint}"
        )
    if not (path / "config.json").is_file():
        raise LoralabError(f"--base {path}: no config.json; not a Hugging Face model folder")
    return path


def check_causal_lm(path: Path) -> None:
    """Fail with one line if the folder's config is not a causal language model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as exc:  # any damage to config.json, whatever transformers raises for it
        raise LoralabError(f"--base {path}: cannot read config.json ({_first_line(exc)})") from None
    archs = getattr(config, "architectures", None) or []
    causal = (
        any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
        if archs
        else (config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    )
    if not causal:
        raise LoralabError(f"--base {path}: model type {config.model_type!r} is not a causal language model")


def load_base(
    base: str | Path | Any, device: str | None = None, dtype: torch.dtype | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode on `device`. Accepts a base preset, an imported base, a folder, or a
    (model, tokenizer) pair."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    if isinstance(base, tuple):
        return base
    dev = pick_device(device)  # before a base preset is built on first use
    path = resolve_base(base)
    check_causal_lm(path)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as exc:  # a truncated weights file or a broken tokenizer raise many classes
        raise LoralabError(f"--base {path}: cannot load ({_first_line(exc)})") from None
    rows = int(getattr(model.config, "vocab_size", 0) or 0)
    if len(tokenizer) * 4 < rows:  # tokenizer.json missing: transformers builds a tokenizer of a few tokens
        raise LoralabError(
            f"--base {path}: its tokenizer has {len(tokenizer)} tokens for a vocabulary of {rows} "
            "(tokenizer files missing or damaged?)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(dev).eval()  # type: ignore[arg-type]
    model.name_or_path = str(path)
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
