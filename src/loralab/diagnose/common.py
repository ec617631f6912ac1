"""What every measurement shares: module names -> layer and kind, probes as token sequences with token
classes, and which expert owns a probe.

A *probe* is one data row (`prompt`, and where known `gold`, `answer`, the triplet's entities `a`, `b`, `c`,
the `task` and an `expert` label) turned into the token ids the model reads: the prompt under the base's
chat template, then a continuation (the model's own greedy output, or the reference answer). Its tokens
fall into classes: `prompt`, `generated` (the continuation), `focus` (the last prompt token and the
continuation: where the answer is produced), and, where the row names the entities, `subject` (the prompt's
subject entity), `relation` (the rest of the question), `answer` (the gold entity's last mention in the
continuation) and `bridge` (the bridge entity B's first mention in a CoT continuation).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError
from loralab.experts.library import Expert, answering_to
from loralab.models.chat import prompt_text

_LAYER = re.compile(r"\.(\d+)\.")
_ATTENTION = ("attn", "attention", "q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value")
_MLP = ("mlp", "gate_proj", "up_proj", "down_proj", "fc1", "fc2", "ffn", "feed_forward")
# which entity of a two-hop row its prompt asks about: hop 1 and the two-hop prompts ask about A, hop 2 about B
SUBJECT = {"ab": "a", "ac": "a", "ac_cot": "a", "bc": "b"}
TWO_HOP = ("ac", "ac_cot")


def is_two_hop(task: Any) -> bool:
    """A two-hop task (ac, ac_cot) or a graph composition (rel1_rel2, rel1_rel2_cot)."""
    from loralab.evaluation.retention import kind_of

    return kind_of(task) in TWO_HOP


CLASSES = ("all", "prompt", "generated", "focus", "subject", "relation", "answer", "bridge")


def layer_of(module: str) -> int:
    """The block index in a module name (`model.layers.3.mlp.up_proj` -> 3); -1 when there is none."""
    found = _LAYER.search(module)
    return int(found.group(1)) if found else -1


def kind_of(module: str) -> str:
    """`attention`, `mlp` or `other`, from the module's name."""
    parts = module.lower().split(".")
    if any(p in _ATTENTION or p.endswith("attn") for p in parts):
        return "attention"
    if any(p in _MLP for p in parts):
        return "mlp"
    return "other"


def layer_groups(modules: Sequence[str]) -> dict[str, list[str]]:
    """Modules by group `KIND/early` or `KIND/late`: early are the first half of the blocks (layer index
    l with 2 l < L, L = largest index + 1); modules without a layer index count as early."""
    n_layers = max((layer_of(m) for m in modules), default=-1) + 1
    groups: dict[str, list[str]] = {}
    for m in modules:
        half = "early" if 2 * layer_of(m) < n_layers else "late"
        groups.setdefault(f"{kind_of(m)}/{half}", []).append(m)
    return dict(sorted(groups.items()))


@dataclass
class Probe:
    """One row as the tokens the model reads, with the token classes (indices into `ids`)."""

    row: dict[str, Any]
    ids: list[int]
    n_prompt: int
    classes: dict[str, list[int]] = field(default_factory=dict)
    owner: int | None = None
    tokens: list[str] = field(default_factory=list)


def _overlapping(offsets: Sequence[tuple[int, int]], start: int, end: int, shift: int = 0) -> list[int]:
    return [i + shift for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]


def _encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
    if not text:
        return [], []
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    except (NotImplementedError, TypeError, KeyError):  # a slow tokenizer has no offsets
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]), None


def make_probe(tokenizer: Any, row: dict[str, Any], continuation: str, owner: int | None = None) -> Probe:
    """`row`'s prompt (chat template) followed by `continuation`, with its token classes."""
    question = str(row["prompt"])
    text = prompt_text(tokenizer, question)
    p_ids, p_off = _encode(tokenizer, text)
    c_ids, c_off = _encode(tokenizer, continuation)
    n_p, n_c = len(p_ids), len(c_ids)
    classes = {
        "all": list(range(n_p + n_c)),
        "prompt": list(range(n_p)),
        "generated": list(range(n_p, n_p + n_c)),
        "focus": list(range(max(0, n_p - 1), n_p + n_c)),
    }
    subject = row.get("subject") or row.get(SUBJECT.get(str(row.get("task")), ""), "")
    q_start = text.find(question)
    if p_off is not None and q_start >= 0:
        q_tokens = _overlapping(p_off, q_start, q_start + len(question))
        where = question.find(str(subject)) if subject else -1
        if where >= 0:
            s = q_start + where
            classes["subject"] = _overlapping(p_off, s, s + len(str(subject)))
            classes["relation"] = [i for i in q_tokens if i not in set(classes["subject"])]
    if c_off is not None:
        gold = str(row.get("gold") or "")
        at = continuation.rfind(gold) if gold else -1
        if at >= 0:
            classes["answer"] = _overlapping(c_off, at, at + len(gold), n_p)
        bridge = str(row.get("b") or row.get("middle") or "") if is_two_hop(row.get("task")) else ""
        at = continuation.find(bridge) if bridge and bridge != gold else -1
        if at >= 0:
            classes["bridge"] = _overlapping(c_off, at, at + len(bridge), n_p)
    tokens = [tokenizer.decode([i]) for i in p_ids + c_ids]
    return Probe(row, p_ids + c_ids, n_p, classes, owner, tokens)


# ---------------------------------------------------------------------------
# Which expert owns a probe
# ---------------------------------------------------------------------------


def _fact(row: dict[str, Any]) -> tuple[str, str, str] | None:
    """A row's fact: (dataset, task, triplet), or None when the row does not name all three."""
    parts = (row.get("dataset"), row.get("task"), row.get("triplet"))
    return None if any(p is None for p in parts) else (str(parts[0]), str(parts[1]), str(parts[2]))


def _training(expert: Expert) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The tasks an expert was trained on and the facts (`_fact`) of its training rows, read from the
    training files its meta.json lists (for a file that is gone: the file name before the first dot as its
    task, no facts); both empty for an adapter loralab did not train."""
    import json

    tasks: set[str] = set()
    facts: set[tuple[str, str, str]] = set()
    for f in expert.meta.get("data") or []:
        path = Path(f)
        found = False
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        if row.get("task"):
                            tasks.add(str(row["task"]))
                            found = True
                        fact = _fact(row)
                        if fact is not None:
                            facts.add(fact)
        if not found:
            tasks.add(path.name.split(".", 1)[0])
    return tasks, facts


def owners(
    rows: Sequence[dict[str, Any]], experts: Sequence[Expert], source: str = "data"
) -> tuple[list[int | None], str | None]:
    """Per row, the index of the expert that owns its fact, and where the labels came from.

    A row's `expert` field (an expert's name or folder name) wins; an unknown name is an error. Without any
    `expert` field, a row of task t is owned by the expert trained on t with the fewest tasks (hop 1 -> the
    A->B expert, hop 2 -> the B->C expert, two-hop -> the oracle when one is in the library). A tie is broken
    by the row's fact (dataset, task, triplet): when exactly one of the experts trained on t saw that fact,
    it owns the row (the bridge setups, where both experts are trained on ab, bc and ac_cot but only LoRA 1
    on R1's facts). Other ties and tasks no expert saw stay unlabelled. Returns (owners, None) when no row
    could be labelled.
    """
    if any("expert" in r for r in rows):
        names: dict[str, int] = {}
        for i, e in enumerate(experts):
            names.setdefault(e.name, i)
            names.setdefault(e.path.name, i)
        out: list[int | None] = []
        for n, r in enumerate(rows, 1):
            label = r.get("expert")
            if label is not None and str(label) not in names:
                raise LoralabError(
                    f"{source}: row {n} has expert {label!r}, not one of {', '.join(sorted(names))}"
                )
            both = [str(e.path) for e in answering_to(experts, str(label))]
            if len(both) > 1:
                raise LoralabError(
                    f"{source}: row {n} has expert {label!r}, which could be any of {', '.join(both)}"
                )
            out.append(names[str(label)] if label is not None else None)
        return out, "the rows' expert field"
    seen = [_training(e) for e in experts]
    out = []
    for r in rows:
        have = sorted((len(t), i) for i, (t, _) in enumerate(seen) if r.get("task") in t)
        if have and (len(have) == 1 or have[0][0] < have[1][0]):
            out.append(have[0][1])
            continue
        fact = _fact(r)
        knew = [i for _, i in have if fact is not None and fact in seen[i][1]]
        out.append(knew[0] if len(knew) == 1 else None)
    if all(o is None for o in out):
        return out, None
    return out, "the experts' training data (meta.json)"
