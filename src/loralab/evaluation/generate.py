"""One batched greedy generation loop: left padding, KV cache, stop per row at an end token."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from loralab.faults import checkpoint
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.progress import progress


def _cache_argument(model: Any) -> str:
    """transformers >= 5.2x names the KV-cache argument `cache`; earlier releases `past_key_values`."""
    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(core.forward).parameters else "past_key_values"


@torch.inference_mode()
def greedy_batch(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop_ids: Sequence[int]
) -> list[str]:
    """Greedy continuations of already-formatted prompts, decoded without the stop token."""
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    width = max(len(e) for e in enc)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=device)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    stops = torch.tensor(list(stop_ids), device=device)
    done = torch.zeros(len(enc), dtype=torch.bool, device=device)
    out = torch.empty((len(enc), 0), dtype=torch.long, device=device)
    past = None
    cache_arg = _cache_argument(model)
    for _ in range(max_new_tokens):
        res = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{cache_arg: past}
        )
        past = res.cache if cache_arg == "cache" else res.past_key_values
        nxt = res.logits[:, -1].argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        out = torch.cat([out, nxt[:, None]], dim=1)
        done |= torch.isin(nxt, stops)
        if bool(done.all()):
            break
        ids = nxt[:, None]
        mask = torch.cat([mask, torch.ones_like(ids)], dim=1)
        positions = positions[:, -1:] + 1
    texts = []
    for row in out.tolist():
        cut = next((i for i, t in enumerate(row) if t in set(stop_ids)), len(row))
        texts.append(tokenizer.decode(row[:cut], skip_special_tokens=True))
    return texts


def length_sorted_batches(prompts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Indices of `prompts` sorted by length in characters (stable), cut into batches of `batch_size`: the
    batches `generate` decodes, so that little of each is padding."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def generate(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    max_new_tokens: int = 128,
    batch_size: int = 64,
    label: str = "generating",
) -> list[str]:
    """Answers to `questions` under the base's chat template, batched by prompt length; input order kept."""
    prompts = [prompt_text(tokenizer, q) for q in questions]
    stops = stop_token_ids(tokenizer)
    answers: list[str] = [""] * len(prompts)
    with progress() as bar:
        task = bar.add_task(label, total=len(prompts))
        for idx in length_sorted_batches(prompts, batch_size):
            outs = greedy_batch(model, tokenizer, [prompts[i] for i in idx], max_new_tokens, stops)
            for i, text in zip(idx, outs, strict=True):
                answers[i] = text
            bar.update(task, advance=len(idx))
            checkpoint("eval-batch")
    return answers
