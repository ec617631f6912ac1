"""How familiar a base model is with each entity pool: fact accuracy and the log-probability of the names.

Two measurements per pool (real people, real cities, and the fake names of FF/HH experiments):
- *names*: the mean per-token log-probability of each name as the start of a new document (after the
  tokenizer's document-boundary token, `<|endoftext|>` where the vocabulary has it), averaged over names. No
  prompt words favour people, places or either pool; a name the model has read often is a likely document
  opening, a name it has never read is spelled out by rare sub-words.
- *facts*: accuracy of greedy answers (under the base's chat template) to questions about true public facts
  (`facts.py`), an answer counting when it mentions the gold. For a built-in base, whose corpus gives its real
  people made-up spouses and birth cities, also its own *corpus* facts, asked with a corpus phrasing.
Fake pools have no facts. `familiarity_summary(base)` computes both once per base and caches them beside it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from loralab.artifacts import META, cache_dir, config_hash, provenance, read_json, write_json
from loralab.errors import LoralabError
from loralab.probes.facts import ANSWERS, QUESTIONS, Fact, mentions, public_facts

PROBE_VERSION = 1
MAX_NEW_TOKENS = 32
CACHE_FILE = "familiarity.json"
BOUNDARY = "<|endoftext|>"


@dataclass(frozen=True)
class Pool:
    """A list of entity names the experiments draw from."""

    name: str
    description: str
    names: tuple[str, ...]
    real: bool


def pools() -> dict[str, Pool]:
    """The probed pools, real and fake; fake pools are as large as their real counterparts."""
    from loralab.worlds.entities import fake_names
    from loralab.worlds.familiar import FAMILIAR_PEOPLE
    from loralab.worlds.pools import REAL_CITIES, REAL_PEOPLE

    rr, other = REAL_PEOPLE[:FAMILIAR_PEOPLE], REAL_PEOPLE[FAMILIAR_PEOPLE:]
    fake_people = tuple(fake_names(len(rr), "person", "experiment"))
    fake_cities = tuple(fake_names(len(REAL_CITIES), "city", "experiment"))
    found = [
        Pool("real_people", "real people of RR (in the built-in base's corpus)", rr, True),
        Pool("real_people_other", "real people beyond RR's pool (not in the built-in corpus)", other, True),
        Pool("real_cities", "real cities (HH and RR)", REAL_CITIES, True),
        Pool("fake_people", "fake people of FF and HH (seed 0)", fake_people, False),
        Pool("fake_cities", "fake cities of FF (seed 0)", fake_cities, False),
    ]
    return {p.name: p for p in found}


def context_ids(tokenizer: Any) -> list[int]:
    """The neutral context a name is scored after: one document-boundary token."""
    vocab = tokenizer.get_vocab()
    if BOUNDARY in vocab:
        return [int(vocab[BOUNDARY])]
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return [int(tid)]
    raise LoralabError("familiarity probe: the tokenizer has no document-boundary, BOS or EOS token")


@torch.inference_mode()
def name_logprobs(
    model: Any, tokenizer: Any, names: Sequence[str], context: Sequence[int], batch_size: int = 64
) -> list[tuple[float, int]]:
    """(sum of log p over the name's tokens, number of tokens) for each name, scored after `context`."""
    device = next(model.parameters()).device
    encoded = tokenizer(list(names), add_special_tokens=False)["input_ids"]
    out: list[tuple[float, int]] = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        width = len(context) + max(len(e) for e in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, e in enumerate(chunk):
            ids[row, : len(context) + len(e)] = torch.tensor([*context, *e])
            mask[row, : len(context) + len(e)] = 1
        logp = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)
        for row, e in enumerate(chunk):
            # the token at position t is predicted by the logits at t - 1
            pos = torch.arange(len(context) - 1, len(context) - 1 + len(e), device=device)
            target = torch.tensor(e, device=device)
            out.append((float(logp[row, pos, target].sum()), len(e)))
    return out


def score(facts: Sequence[Fact], answers: Sequence[str]) -> list[bool]:
    """Whether each answer mentions its fact's gold."""
    return [mentions(a, f.gold) for f, a in zip(facts, answers, strict=True)]


def corpus_facts(path: Path) -> list[Fact]:
    """A built-in base's own facts about its real people (spouse, birth city), asked as its corpus asks them;
    none for any other base."""
    from loralab.models.tiny import BasePreset
    from loralab.worlds.corpus_templates import CORPUS_QUESTIONS
    from loralab.worlds.familiar import build_world

    meta = read_json(path / META) if (path / META).is_file() else {}
    if meta.get("kind") != "base" or "preset" not in meta:
        return []
    cfg = BasePreset(**meta["config"])
    world = build_world(cfg.n_real, 0, 0, seed=cfg.seed)
    return [
        Fact(p, rel, CORPUS_QUESTIONS[rel][0][0].format(x=p), (world.facts[p][rel],))
        for p in world.real_people
        for rel in ("spouse", "born_in")
    ]


def _rate(ok: list[bool]) -> dict[str, Any] | None:
    return {"n": len(ok), "correct": sum(ok), "accuracy": sum(ok) / len(ok)} if ok else None


def probe(base: str | Path | tuple[Any, Any]) -> dict[str, Any]:
    """Measure every pool on `base` (a base preset, an imported base, a folder, or a loaded pair); the result
    holds per-pool numbers and every question with its answer."""
    from loralab.evaluation.generate import generate
    from loralab.models.load import load_base, resolve_base

    start = time.time()
    path = None if isinstance(base, tuple) else resolve_base(base)
    model, tokenizer = load_base(base if path is None else path)
    context = context_ids(tokenizer)
    own = corpus_facts(path) if path is not None else []
    questions: list[tuple[str, str, Fact]] = []
    result: dict[str, Any] = {"pools": {}}
    for pool in pools().values():
        lps = name_logprobs(model, tokenizer, pool.names, context)
        result["pools"][pool.name] = {
            "description": pool.description,
            "names": len(pool.names),
            "tokens_per_name": sum(n for _, n in lps) / len(lps),
            "logprob_per_token": sum(lp / n for lp, n in lps) / len(lps),
        }
        members = set(pool.names)
        questions += [(pool.name, "public", f) for f in public_facts(pool.names)]
        questions += [(pool.name, "corpus", f) for f in own if f.subject in members]
    answers = generate(
        model, tokenizer, [f.question for _, _, f in questions], MAX_NEW_TOKENS, label="familiarity facts"
    )
    correct = score([f for _, _, f in questions], answers)
    for name, entry in result["pools"].items():
        for source in ("public", "corpus"):
            ok = [c for (p, s, _), c in zip(questions, correct, strict=True) if (p, s) == (name, source)]
            entry[f"{source}_facts"] = _rate(ok)
    result["answers"] = [
        {"pool": p, "source": s, "relation": f.relation, "question": f.question}
        | {"gold": list(f.gold), "answer": a, "correct": c}
        for (p, s, f), a, c in zip(questions, answers, correct, strict=True)
    ]
    result.update(
        base=str(path) if path is not None else str(getattr(model, "name_or_path", "")),
        context=tokenizer.decode(context),
        max_new_tokens=MAX_NEW_TOKENS,
        seconds=round(time.time() - start, 1),
        **provenance(),
    )
    return result


def _fingerprint(path: Path) -> str:
    """Changes when the probe's questions or pools change, or the model files are rewritten."""
    files = sorted(
        p for p in path.iterdir() if p.suffix in (".safetensors", ".bin") or p.name == "config.json"
    )
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    probe_def = [PROBE_VERSION, MAX_NEW_TOKENS, QUESTIONS, ANSWERS, {k: p.names for k, p in pools().items()}]
    return config_hash({"probe": probe_def, "files": stats})


def cache_path(path: Path) -> Path:
    """`familiarity.json` inside the base folder, or in the loralab cache when that folder is read-only."""
    if os.access(path, os.W_OK):
        return path / CACHE_FILE
    return cache_dir() / "probes" / f"familiarity-{config_hash(str(path.resolve()))}.json"


def cached_probe(base: str | Path, refresh: bool = False) -> dict[str, Any]:
    """`probe(base)`, computed once per base and kept in `cache_path`; recomputed when stale or `refresh`."""
    from loralab.models.load import resolve_base

    path = resolve_base(base)
    key = _fingerprint(path)
    cached = cache_path(path)
    if cached.is_file() and not refresh:
        try:
            data = read_json(cached)
        except LoralabError:  # a damaged cache is recomputed
            data = None
        if isinstance(data, dict) and data.get("fingerprint") == key:
            return data
    data = {**probe(path), "fingerprint": key}
    write_json(cached, data)
    return data


def familiarity_summary(base: str | Path, refresh: bool = False) -> dict[str, Any]:
    """The base's familiarity per pool, without the per-question answers; computed once per base.

    This is what an experiment stores in its metadata; `loralab probe familiarity` prints it.
    """
    return {k: v for k, v in cached_probe(base, refresh).items() if k != "answers"}


def rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One tidy row per pool: names, tokens per name, log p per token, public and corpus fact accuracy."""
    order = {name: i for i, name in enumerate(pools())}  # a cached summary's keys come back sorted
    out = []
    for name, entry in sorted(summary["pools"].items(), key=lambda kv: order.get(kv[0], len(order))):
        row = {"base": summary["base"], "pool": name, "names": entry["names"]}
        row.update(tokens_per_name=entry["tokens_per_name"], logprob_per_token=entry["logprob_per_token"])
        for source in ("public", "corpus"):
            rate = entry.get(f"{source}_facts")
            row[f"{source}_n"] = rate["n"] if rate else 0
            row[f"{source}_correct"] = rate["correct"] if rate else 0
            row[f"{source}_accuracy"] = rate["accuracy"] if rate else None
        out.append(row)
    return out
