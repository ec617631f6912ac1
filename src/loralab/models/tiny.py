"""The built-in base: a small Qwen2 model pretrained here on the familiar-world corpus, one per base preset
(`BASE_PRESETS`: default, test), cached by config hash."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from loralab.artifacts import META, cache_dir, config_hash
from loralab.errors import LoralabError, did_you_mean
from loralab.models.chat import CHAT_TEMPLATE, EOT, IM_END, SPECIAL_TOKENS
from loralab.models.corpus import build_corpus
from loralab.models.save import save_base
from loralab.progress import progress
from loralab.worlds.familiar import FAMILIAR_PEOPLE, build_world


class BasePreset(BaseModel):
    """A base preset: what determines a built-in base (its hash names the cache folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    hidden_size: int = Field(description="model width")
    layers: int = Field(description="transformer blocks")
    intermediate_size: int = Field(description="MLP width")
    heads: int = Field(description="attention heads")
    kv_heads: int = Field(description="key/value heads (grouped-query attention)")
    vocab_size: int = Field(description="byte-level BPE vocabulary, special tokens included")
    n_real: int = Field(description="real people in the corpus (from the project's list)")
    n_background: int = Field(description="one-off background people with fake (background-space) names")
    n_towns: int = Field(description="background towns with fake names")
    statements: int = Field(description="statements per (real person, relation)")
    questions: int = Field(description="chat Q/A turns per (real person, relation)")
    bios: int = Field(description="bios per real person")
    cot: int = Field(description="CoT two-hop demonstrations per real person")
    background_facts: int = Field(description="facts mentioned per background person")
    seq_len: int = Field(description="pretraining sequence length (packed)")
    batch_size: int = Field(description="sequences per step")
    steps: int = Field(description="optimizer steps")
    lr: float = Field(description="peak AdamW learning rate (cosine to 10%)")
    seed: int = 0


BASE_PRESETS: dict[str, BasePreset] = {
    "default": BasePreset(
        hidden_size=256,
        layers=6,
        intermediate_size=1024,
        heads=4,
        kv_heads=2,
        vocab_size=4096,
        n_real=FAMILIAR_PEOPLE,
        n_background=3000,
        n_towns=400,
        statements=8,
        questions=6,
        bios=4,
        cot=8,
        background_facts=2,
        seq_len=128,
        batch_size=32,
        steps=950,
        lr=2e-3,
    ),
    "test": BasePreset(
        hidden_size=32,
        layers=2,
        intermediate_size=64,
        heads=2,
        kv_heads=1,
        vocab_size=400,
        n_real=40,
        n_background=40,
        n_towns=10,
        statements=1,
        questions=1,
        bios=1,
        cot=1,
        background_facts=1,
        seq_len=64,
        batch_size=8,
        steps=30,
        lr=3e-3,
    ),
}


BUILD_TIME = {"default": "about 15 min on a 2-core CPU", "test": "a few seconds"}
"""How long building each base preset takes (measured on the reference machine; README), said before a build."""


def base_preset_dir(name: str) -> Path:
    """The cache folder of base preset `name` (named by the hash of its definition)."""
    if name not in BASE_PRESETS:
        choices = ", ".join(BASE_PRESETS)
        hint = did_you_mean(name, BASE_PRESETS)
        raise LoralabError(f"base preset {name}: unknown; choose one of {choices}{hint}")
    return cache_dir() / "bases" / f"{name}-{config_hash(BASE_PRESETS[name].model_dump())}"


def ensure_built(name: str) -> Path:
    """The cached folder of base preset `name`, building it first if it is not there."""
    path = base_preset_dir(name)
    if not (path / META).is_file():
        build_base(name)
    return path


def train_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on the corpus, wrapped for `save_pretrained`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=EOT)
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def corpus_and_tokens(p: BasePreset) -> tuple[list[str], Any, torch.Tensor]:
    """The preset's corpus, the tokenizer trained on it, and the corpus as one packed token stream."""
    world = build_world(p.n_real, p.n_background, p.n_towns, seed=p.seed)
    corpus = build_corpus(world, p.statements, p.questions, p.bios, p.cot, p.background_facts, seed=p.seed)
    tokenizer = train_tokenizer(corpus, p.vocab_size)
    ids = torch.tensor([t for doc in tokenizer(corpus)["input_ids"] for t in doc], dtype=torch.long)
    return corpus, tokenizer, ids


def make_model(p: BasePreset, tokenizer: Any) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=p.hidden_size,
        intermediate_size=p.intermediate_size,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(p.seed)
    return Qwen2ForCausalLM(config)


def pretrain(
    model: Any,
    ids: torch.Tensor,
    p: BasePreset,
    label: str,
    after_step: Callable[[int, list[float]], None] | None = None,
) -> list[float]:
    """Next-token training on random windows of the packed token stream; returns the loss curve.
    `after_step(steps_done, losses)`, if given, is called after every optimizer step (checkpoints)."""
    gen = torch.Generator().manual_seed(p.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=0.1, betas=(0.9, 0.95))
    warmup = max(1, p.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        frac = (step - warmup) / max(1, p.steps - warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    losses: list[float] = []
    with progress() as bar:
        task = bar.add_task(f"pretraining {label}", total=p.steps)
        for _ in range(p.steps):
            starts = torch.randint(0, len(ids) - p.seq_len - 1, (p.batch_size,), generator=gen)
            batch = torch.stack([ids[s : s + p.seq_len] for s in starts.tolist()])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ids.device.type == "cpu"):
                loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(task, advance=1, description=f"pretraining {label} loss {losses[-1]:.3f}")
            if after_step is not None:
                after_step(len(losses), losses)
    model.eval()
    return losses


def build_base(name: str) -> Path:
    """(Re)build base preset `name` into the cache: corpus -> tokenizer -> pretraining -> `save_pretrained`."""
    out = base_preset_dir(name)  # checks the name
    p = BASE_PRESETS[name]
    when = BUILD_TIME.get(name, "minutes")
    print(
        f"building the built-in base {name!r} into {out} first ({when}; once, then cached)", file=sys.stderr
    )
    start = time.time()
    corpus, tokenizer, ids = corpus_and_tokens(p)
    model = make_model(p, tokenizer)
    losses = pretrain(model, ids, p, name)
    save_base(
        out,
        model,
        tokenizer,
        {
            "preset": name,
            "config": p.model_dump(),
            "corpus_documents": len(corpus),
            "corpus_tokens": len(ids),
            "parameters": sum(t.numel() for t in model.parameters()),
            "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "seconds": round(time.time() - start, 1),
        },
    )
    return out
