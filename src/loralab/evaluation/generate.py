"""Batched greedy generation: length-sorted, left-padded batches through transformers' `generate` (KV cache),
each row stopping at an end token.

loralab had its own decoding loop (left padding, position ids from the mask, a KV cache, a `done` mask per
row). HF `generate` on the same batches gives the same predictions (every generation of the test suite, and
tests/test_evaluate.py's stop and routing cases; bench/eval_batched.py checks it on the default base) and
was as fast (the loop took 3.65 s, `generate` 3.51 s for 128 CoT prompts on the default base, 2026-12-06,
bench/README.md); it also follows transformers' cache API as it changes, so it is used instead. Routed modules
(`combination.routed`) route each token in their forward, which `generate` calls once per step, so they need
nothing from the loop. Only the batching (`length_sorted_batches`), the stop tokens and plain greedy decoding
(`_plain_greedy`) are loralab's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import GenerationConfig

from loralab.faults import checkpoint
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.progress import progress

# The most new tokens one generation may ask for: longer than any answer here (GSM CoT 384) or a long
# real-model solution, short enough that a typo (1e8) is refused rather than run until memory runs out.
MAX_NEW_TOKENS_LIMIT = 32_768


@contextlib.contextmanager
def _plain_greedy(model: Any) -> Iterator[None]:
    """Hide the model's own `generation_config` (a checkpoint may set a repetition penalty, suppressed or
    forced tokens, ...) so that `generate` decodes plain greedy argmax; PEFT passes its copy on, so both."""
    owners = [model, *([model.get_base_model()] if hasattr(model, "get_base_model") else [])]
    saved = [o.generation_config for o in owners]
    for o in owners:
        o.generation_config = GenerationConfig()
    try:
        yield
    finally:
        for o, config in zip(owners, saved, strict=True):
            o.generation_config = config


@torch.inference_mode()
def greedy_batch(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop_ids: Sequence[int]
) -> list[str]:
    """Greedy continuations of already-formatted prompts (one left-padded batch), decoded without the stop
    token and what follows it."""
    device = next(model.parameters()).device
    enc = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    width = max(len(e) for e in enc)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=device)
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
    stops = set(stop_ids)
    with _plain_greedy(model):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=list(stop_ids),
            pad_token_id=pad,
        )
    texts = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
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
