"""The one training loop for every expert: PEFT LoRA, loss on answer tokens only, length-bucketed batches."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from loralab.artifacts import META, atomic_dir, provenance, write_json
from loralab.errors import LoralabError
from loralab.experts.config import (
    DEFAULT_EPOCHS,
    PAPER_LR,
    TARGET_MODULES,
    TINY_BASE_EPOCHS,
    TINY_BASE_LR,
    ExpertConfig,
)
from loralab.experts.dropout import use_fast_dropout
from loralab.faults import checkpoint
from loralab.models.chat import end_text, prompt_text
from loralab.progress import progress
from loralab.worlds.jsonl import read_jsonl

Example = tuple[list[int], list[int]]  # (input ids, labels with -100 on the prompt)


def flag(field: str) -> str:
    """How an `ExpertConfig` field is named to the user of `loralab train`: its flag."""
    return "--" + field.replace("_", "-")


def resolve_targets(model: Any, targets: str, option: Callable[[str], str] = flag) -> list[str]:
    """The module-name suffixes of preset `targets` that this architecture has as linear layers."""
    wanted = TARGET_MODULES[targets]
    found = {
        name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)
    }
    present = [w for w in wanted if w in found]
    if not present:
        raise LoralabError(f"{option('targets')} {targets}: the base has none of {', '.join(wanted)}")
    return present


def check_rank(model: Any, targets: Sequence[str], r: int, option: Callable[[str], str] = flag) -> None:
    """A rank above a targeted layer's smaller side adds parameters that cannot raise the update's rank."""
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets:
            side = min(mod.in_features, mod.out_features)
            if r > side:
                raise LoralabError(
                    f"{option('r')} {r}: larger than {name}'s smaller side ({side}); use at most {side}"
                )


def attach_lora(model: Any, cfg: ExpertConfig) -> Any:
    """`model` wrapped by PEFT with a fresh LoRA of `cfg`'s rank, alpha, dropout and target preset."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=resolve_targets(model, cfg.targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def is_builtin_base(model: Any) -> bool:
    from loralab.artifacts import cache_dir

    return str(getattr(model, "name_or_path", "")).startswith(str(cache_dir() / "bases"))


def encode(
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    max_len: int,
    source: str,
    option: Callable[[str], str] = flag,
    context: int | None = None,
) -> list[Example]:
    """Chat-format each (prompt, answer) and mask the prompt out of the labels. An example longer than
    `max_len` or than the base's `context` (positions it was never trained at) is an error."""
    ends = end_text(tokenizer)
    prompts = tokenizer([prompt_text(tokenizer, r["prompt"]) for r in rows], add_special_tokens=False)
    answers = tokenizer([r["answer"] + ends for r in rows], add_special_tokens=False)
    out = []
    for i, (p, a) in enumerate(zip(prompts["input_ids"], answers["input_ids"], strict=True)):
        if len(p) + len(a) > max_len:
            raise LoralabError(
                f"{source}: example {i + 1} has {len(p) + len(a)} tokens > {option('max_len')} {max_len}"
            )
        if context and len(p) + len(a) > context:
            raise LoralabError(
                f"{source}: example {i + 1} has {len(p) + len(a):,} tokens, beyond the base's context of "
                f"{context:,}"
            )
        out.append((p + a, [-100] * len(p) + a))
    return out


def bucketed_batches(examples: Sequence[Example], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (little padding), batch order shuffled."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(
    examples: Sequence[Example], idx: Sequence[int], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), -100, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        x, y = examples[i]
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def train_expert(
    base: Any,
    data: Sequence[Path | str],
    out: Path | str,
    config: ExpertConfig | None = None,
    name: str | None = None,
    overwrite: bool = False,
    option: Callable[[str], str] = flag,
) -> Path:
    """Train one LoRA expert on JSONL files of (prompt, answer) and save it as a PEFT adapter + `meta.json`.

    `base` is a base preset or imported base name, a model folder or a loaded (model, tokenizer) pair.
    `option` names a config field in an error (`--max-len` for `loralab train`; a spec gives its key).
    """
    from loralab.models.load import load_base

    cfg = config or ExpertConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise LoralabError(f"{out}: already exists (pass --overwrite to replace it)")
    rows = [(str(f), read_jsonl(f)) for f in data]
    model, tokenizer = load_base(base)
    context = getattr(model.config, "max_position_embeddings", None)
    examples = [ex for src, rs in rows for ex in encode(tokenizer, rs, cfg.max_len, src, option, context)]
    builtin = is_builtin_base(model)
    cfg = cfg.model_copy(
        update={
            "lr": cfg.lr or (TINY_BASE_LR if builtin else PAPER_LR),
            "epochs": cfg.epochs or (TINY_BASE_EPOCHS if builtin else DEFAULT_EPOCHS),
        }
    )
    targets = resolve_targets(model, cfg.targets, option)
    check_rank(model, targets, cfg.r, option)
    torch.manual_seed(cfg.seed)
    peft_model = attach_lora(model, cfg)
    losses, seconds, tokens = _fit(peft_model, tokenizer, examples, cfg)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        peft_model.save_pretrained(str(tmp))
        write_json(
            tmp / META,
            {
                "kind": "expert",
                "name": name or out.name,
                "base": str(model.name_or_path),
                "data": [str(Path(f).resolve()) for f in data],
                "examples": len(examples),
                "config": cfg.model_dump(),
                "lr": cfg.lr,
                "target_modules": targets,
                "final_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
                "train_seconds": round(seconds, 2),
                "train_tokens": tokens,
                **provenance(),
            },
        )
    peft_model.unload()
    return out


def _fit(
    model: Any, tokenizer: Any, examples: list[Example], cfg: ExpertConfig
) -> tuple[list[float], float, int]:
    """Train the PEFT model in place; `cfg` must be resolved (lr and epochs set)."""
    assert cfg.lr is not None and cfg.epochs is not None, "resolve lr and epochs first"
    lr, epochs = cfg.lr, cfg.epochs
    device = next(model.parameters()).device
    use_fast_dropout(model)
    rng = random.Random(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps = epochs * math.ceil(len(examples) / cfg.batch_size)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * (1 - s / steps))
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    losses: list[float] = []
    tokens = 0
    model.train()
    start = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("training expert", total=steps)
        for _ in range(epochs):
            for idx in bucketed_batches(examples, cfg.batch_size, rng):
                batch = collate(examples, idx, pad, device)
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    loss = model(**batch).loss
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                if not math.isfinite(losses[-1]):  # nothing is written: the expert would hold NaN weights
                    raise LoralabError(
                        f"training diverged at step {len(losses)} (loss {losses[-1]}); lower --lr "
                        f"(now {cfg.lr})"
                    )
                tokens += int(batch["attention_mask"].sum())
                bar.update(task, advance=1, description=f"training expert loss {losses[-1]:.3f}")
                checkpoint("train-step")
    model.eval()
    return losses, time.perf_counter() - start, tokens
