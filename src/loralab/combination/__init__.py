"""Combination methods (merges, routers, learned) and the functions that apply them to a base model.

`combine(base, experts, method, **options)` returns the combined model (ready for `generate`);
`merge(experts, method, **options)` returns one module -> LoRA mapping for a merge, and `export_adapter`
writes it as a PEFT adapter folder; `save_combined` writes a router's recipe as a loadable folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from loralab.artifacts import META, atomic_dir, provenance, read_json, write_json
from loralab.combination.lora import Lora, pad_rank, refactor
from loralab.combination.methods import SPECS
from loralab.combination.registry import METHODS, MethodSpec, Option, coerce_options, options, register
from loralab.combination.routed import RoutedLinear
from loralab.errors import LoralabError, did_you_mean
from loralab.experts.library import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    Expert,
    check_compatible,
    load_expert,
    read_adapter_config,
    recorded_base,
)

for _spec in SPECS:
    register(_spec)

__all__ = [
    "METHODS",
    "Merged",
    "MethodSpec",
    "Option",
    "RoutedLinear",
    "combine",
    "export_adapter",
    "load_combined",
    "merge",
    "method_options",
    "save_combined",
]
COMBINED = "combination.json"


def method_options(spec: MethodSpec) -> dict[str, Any]:
    """The method's keyword options and their defaults."""
    return {o.name: o.default for o in options(spec)}


def get_method(method: str) -> MethodSpec:
    spec = METHODS.get(method)
    if spec is None:
        choices = ", ".join(sorted(METHODS))
        raise LoralabError(
            f"--method {method}: unknown; choose one of {choices}{did_you_mean(method, METHODS)}"
        )
    return spec


@dataclass
class Merged:
    """A merge's result: per module, LoRA factors or a dense delta; the retained energy when truncated."""

    method: str
    options: dict[str, Any]
    modules: dict[str, Lora | torch.Tensor]
    energy: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def delta(self, module: str) -> torch.Tensor:
        m = self.modules[module]
        return m.delta() if isinstance(m, Lora) else m

    def factors(self, module: str) -> Lora:
        """LoRA factors for `module` (an exact SVD of a dense delta, computed on demand)."""
        m = self.modules[module]
        if isinstance(m, Lora):
            return m
        lora, energy = refactor(m)
        self.energy[module] = energy
        return lora


def _loras(experts: Sequence[Expert], module: str) -> list[Lora]:
    return [Lora(e.A[module], e.B[module], e.scaling) for e in experts]


def merge(
    experts: Sequence[Path | str | Expert],
    method: str,
    model: Any = None,
    tokenizer: Any = None,
    **raw_options: Any,
) -> Merged:
    """Merge `experts` with a merge or learned `method` into one LoRA per module (learned methods need the
    base `model` and `tokenizer`). Option `rank` truncates each module by SVD and reports retained energy."""
    import inspect

    spec = get_method(method)
    if spec.kind not in ("merge", "learned"):
        raise LoralabError(f"--method {method}: is a {spec.kind}, not a merge (it has no single adapter)")
    opts = coerce_options(spec, raw_options)
    rank = opts.pop("rank", None)
    loaded = [e if isinstance(e, Expert) else load_expert(e) for e in experts]
    if not loaded:
        raise LoralabError("--expert: no experts given")
    if model is not None:
        check_compatible(loaded, model)
    else:
        _check_same_modules(loaded)
    info: dict[str, Any] = {}
    if spec.kind == "learned":
        if model is None:
            raise LoralabError(f"--method {method}: a learned method needs the base model")
        modules, info = spec.fn(model, loaded, tokenizer=tokenizer, **opts)
        out: dict[str, Lora | torch.Tensor] = dict(modules)
    else:
        takes_module = "module" in inspect.signature(spec.fn).parameters
        out = {}
        for m in loaded[0].modules:
            extra = {"module": m} if takes_module else {}
            out[m] = spec.fn(_loras(loaded, m), **opts, **extra)
    merged = Merged(method, {**opts, **({"rank": rank} if rank else {})}, out, info=info)
    _check_finite(merged)
    if rank is not None:
        for m, value in out.items():
            full = value.delta() if isinstance(value, Lora) else value
            merged.modules[m], merged.energy[m] = refactor(full, rank, what=m)
    return merged


def _check_finite(merged: Merged) -> None:
    """A merge whose options overflow (`weights=1e308,1e308`; a learned method's lr so large that its loss
    diverges) is an error here, before it is applied, exported or evaluated as if it were a model."""
    for module, value in merged.modules.items():
        parts = [value.A, value.B, torch.tensor(value.scale)] if isinstance(value, Lora) else [value]
        if not all(bool(torch.isfinite(t).all()) for t in parts):
            shown = ", ".join(f"{k}={v}" for k, v in merged.options.items() if k not in ("data",))
            raise LoralabError(
                f"--method {merged.method}: the merged weights of {module} hold NaN or Inf "
                f"(options: {shown or 'the defaults'}); smaller weights or learning rate give a finite merge"
            )


def _check_same_modules(experts: list[Expert]) -> None:
    first = experts[0]
    for e in experts[1:]:
        if set(e.modules) != set(first.modules):
            raise LoralabError(f"{e.path}: targets other modules than {first.path}")
        for m in e.modules:
            if e.A[m].shape[1] != first.A[m].shape[1] or e.B[m].shape[0] != first.B[m].shape[0]:
                raise LoralabError(f"{e.path}: {m} has another shape than in {first.path} (other base?)")


def combine(base: Any, experts: Sequence[Path | str | Expert], method: str, **options: Any) -> Any:
    """The base model with `experts` combined by `method`; ready for evaluation and `generate`.

    `base` is a base name, a model folder, a loaded model, or a (model, tokenizer) pair (loaded models are
    changed in place). Merges add the merged delta to each adapted weight; routers replace each adapted
    linear layer by a routing module; learned methods fit their weights on `data`, then merge.
    """
    from loralab.models.load import load_base

    spec = get_method(method)
    options = coerce_options(spec, options)  # names, types and ranges, before anything is loaded
    tokenizer = None
    if isinstance(base, tuple):
        model, tokenizer = base
    elif isinstance(base, torch.nn.Module):
        model = base
    else:
        model, tokenizer = load_base(base)
    if spec.kind == "learned" and tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model.name_or_path)
    loaded = [e if isinstance(e, Expert) else load_expert(e) for e in experts]
    if spec.kind == "baseline":
        if method != "base":
            check_compatible(loaded, model)
        return spec.fn(model, loaded, **options)
    check_compatible(loaded, model)
    if spec.kind == "router":
        return spec.fn(model, loaded, **options)
    merged = merge(loaded, method, model=model, tokenizer=tokenizer, **options)
    with torch.no_grad():
        for module in merged.modules:
            layer = model.get_submodule(module)
            layer.weight += merged.delta(module).to(layer.weight.device, layer.weight.dtype)
    model.loralab_merge = merged  # what was merged, for reports
    return model


def export_adapter(
    merged: Merged, experts: Sequence[Path | str | Expert], out: Path | str, overwrite: bool = False
) -> Path:
    """Write a merge as a PEFT LoRA adapter folder (r = lora_alpha = the largest module rank, scaling 1;
    lower-rank modules zero-padded) plus `meta.json`. Loads with `peft.PeftModel.from_pretrained`."""
    from safetensors.torch import save_file

    loaded = [e if isinstance(e, Expert) else load_expert(e) for e in experts]
    factors = {m: merged.factors(m) for m in merged.modules}
    rank = max(f.rank for f in factors.values())
    config = read_adapter_config(loaded[0].path)
    config.update(
        peft_type="LORA",  # an input may leave it out (LoRA is the default read); PEFT needs it
        r=rank,
        lora_alpha=rank,
        use_rslora=False,
        rank_pattern={},
        alpha_pattern={},
        lora_dropout=0.0,
        target_modules=sorted({m.rsplit(".", 1)[-1] for m in factors}),
    )
    tensors = {}
    for m, f in factors.items():
        padded = pad_rank(f, rank)
        tensors[f"base_model.model.{m}.lora_A.weight"] = padded.A.contiguous()
        tensors[f"base_model.model.{m}.lora_B.weight"] = padded.B.contiguous()
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        write_json(tmp / ADAPTER_CONFIG, config)
        save_file(tensors, str(tmp / ADAPTER_WEIGHTS))
        energy = merged.energy
        write_json(
            tmp / META,
            {
                "kind": "merged-expert",
                "name": Path(out).name,
                "method": merged.method,
                "options": merged.options,
                "experts": [str(e.path) for e in loaded],
                "base": recorded_base(loaded),
                "rank": rank,
                "retained_energy": {"min": min(energy.values()), "mean": sum(energy.values()) / len(energy)}
                if energy
                else 1.0,
                "learned": merged.info,
                **provenance(),
            },
        )
    return Path(out)


def save_combined(
    method: str,
    experts: Sequence[Path | str],
    out: Path | str,
    overwrite: bool = False,
    base: str | None = None,
    **options: Any,
) -> Path:
    """Write a router's recipe: the experts (copied in) and `combination.json` (method, options, and the base:
    `base`, else the one the experts record; one of them is required); `load_combined(folder)` rebuilds the
    routed model on that base."""
    spec = get_method(method)
    opts = coerce_options(spec, options)
    loaded = [load_expert(e) for e in experts]
    _check_same_modules(loaded)
    base = base or recorded_base(loaded)
    if base is None:
        raise LoralabError(
            "--base: the experts do not record their base; pass --base so the recipe stores it"
        )
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        names = []
        for i, e in enumerate(loaded):
            name = f"{i:02d}-{e.path.name}"
            shutil.copytree(e.path, tmp / "experts" / name)
            names.append(name)
        write_json(
            tmp / COMBINED,
            {
                "kind": "combination",
                "method": method,
                "options": opts,
                "experts": names,
                "base": base,
                **provenance(),
            },
        )
    return Path(out)


def load_combined(folder: Path | str, base: Any = None) -> Any:
    """The combination saved by `save_combined` applied to `base` (a name, folder, model or (model,
    tokenizer)); None: the base the recipe records, else the one its experts record, else an error (never
    an implicit build of the default base)."""
    folder = Path(folder)
    recipe = read_json(folder / COMBINED)
    if not isinstance(recipe, dict) or recipe.get("kind") != "combination":
        raise LoralabError(f"{folder / COMBINED}: not a loralab recipe (kind: combination)")
    try:
        experts = [folder / "experts" / str(n) for n in recipe["experts"]]
        method, options = str(recipe["method"]), dict(recipe["options"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LoralabError(f"{folder / COMBINED}: field {exc}: missing or malformed") from None
    if base is None:
        recorded = recipe.get("base") or recorded_base(experts)
        if not recorded:
            raise LoralabError(
                f"{folder / COMBINED}: records no base; pass base= (the --base it was made for)"
            )
        base = recorded
    return combine(base, experts, method, **options)
