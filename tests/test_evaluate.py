from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import torch

from loralab.evaluation import extract, generate, is_correct, wilson
from loralab.evaluation.generate import greedy_batch
from loralab.models.chat import prompt_text, stop_token_ids
from loralab.models.load import load_base


def test_wilson_interval_matches_hand_computation() -> None:
    # p = 0.5, n = 30, z = 1.96: centre 0.5, half = 1.96*sqrt(0.25/30 + 1.96^2/3600)/(1 + 1.96^2/30)
    low, high = wilson(15, 30)
    assert low == pytest.approx(0.3315, abs=1e-4) and high == pytest.approx(0.6685, abs=1e-4)
    low, high = wilson(0, 30)
    assert low == 0.0 and high == pytest.approx(3.8415 / 33.8415, abs=1e-4)
    assert wilson(0, 0) == (0.0, 0.0)


def test_answer_extraction() -> None:
    cot = "First, we need ...\nZint is it.\nTherefore, the answer is Buenos Aires."
    assert extract(cot, "cot") == "Buenos Aires"
    assert is_correct(extract(cot, "cot"), "buenos aires", "cot")
    assert extract("no conclusion here", "cot") == ""
    direct = "Zint is Narik's spouse's recognized birthplace.\nmore"
    assert extract(direct, "direct") == "Zint is Narik's spouse's recognized birthplace."
    assert is_correct(extract(direct, "direct"), "Zint", "direct")
    assert not is_correct("Zinter is the place.", "Zint", "direct")


def test_batched_generation_equals_one_by_one(tiny_base: Path) -> None:
    model, tok = load_base(tiny_base)
    questions = ["Who is Marie Curie married to?", "Where was Pablo Picasso born?", "Hi", "What is 2+2? " * 3]
    batched = generate(model, tok, questions, max_new_tokens=12, batch_size=4)
    stops = stop_token_ids(tok)
    single = [greedy_batch(model, tok, [prompt_text(tok, q)], 12, stops)[0] for q in questions]
    assert batched == single
    # and equal to transformers' own greedy generate on one prompt
    ids = tok(prompt_text(tok, questions[0]), return_tensors="pt", add_special_tokens=False)
    ref = model.generate(
        **ids, max_new_tokens=12, do_sample=False, eos_token_id=stops, pad_token_id=tok.pad_token_id
    )
    new = ref[0, ids["input_ids"].shape[1] :].tolist()
    new = new[: next((i for i, t in enumerate(new) if t in stops), len(new))]
    assert tok.decode(new, skip_special_tokens=True) == single[0]


def sharp_lm(tiny_base: Path) -> Any:
    """The test base's architecture with seeded random weights of std 0.5: sharp logits, so greedy
    continuations differ from prompt to prompt (the trained test base repeats one token everywhere)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_base)
    config.initializer_range = 0.5
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def free_runs(model: Any, tok: Any, prompts: list[str], n: int) -> list[list[int]]:
    """Each prompt's greedy continuation of `n` tokens, alone and with no stop token (transformers)."""
    runs = []
    for p in prompts:
        ids = tok(p, return_tensors="pt", add_special_tokens=False)
        out = model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
        runs.append(out[0, ids["input_ids"].shape[1] :].tolist())
    return runs


def cut(tok: Any, run: list[int], stops: list[int]) -> str:
    return str(
        tok.decode(
            run[: next((i for i, t in enumerate(run) if t in stops), len(run))], skip_special_tokens=True
        )
    )


QUESTIONS = ["Who is Marie Curie married to?", "Where was Pablo Picasso born?", "Hi", "What is 2+2? " * 3]


@pytest.mark.parametrize("method", ["base", "arrow", "uniform_route"])
def test_left_padded_batch_stops_each_row_at_its_own_stop_token(
    method: str, tiny_base: Path, tmp_path: Path
) -> None:
    """Greedy decoding of a left-padded batch, rows stopping at different steps, equals each prompt's
    unstopped greedy continuation cut at its first stop token (the same for routed modules, which see the
    KV cache's one-token steps), and equals transformers' batched `generate` with the same stop tokens."""
    from tests.conftest import make_lora_folder

    _, tok = load_base(tiny_base)
    experts = [make_lora_folder(tmp_path / f"e{i}", sharp_lm(tiny_base), ["up_proj"], 2, i) for i in range(2)]
    model = sharp_lm(tiny_base)
    if method != "base":
        from loralab.combination import combine

        model = combine(model, experts, method)
    prompts = [prompt_text(tok, q) for q in QUESTIONS]
    assert len({len(tok(p)["input_ids"]) for p in prompts}) == 4  # four widths: real left padding
    runs = free_runs(model, tok, prompts, 12)
    stops = sorted({runs[1][4], runs[2][0]})  # a row stopping at once, one midway, and (check) one never
    want = [cut(tok, r, stops) for r in runs]
    ends = [next((i for i, t in enumerate(r) if t in stops), 12) for r in runs]
    assert 0 in ends and 12 in ends and any(0 < e < 12 for e in ends), ends
    assert greedy_batch(model, tok, prompts, 12, stops) == want
    side, tok.padding_side = tok.padding_side, "left"
    enc = tok(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
    tok.padding_side = side
    out = model.generate(**enc, max_new_tokens=12, do_sample=False, eos_token_id=stops, pad_token_id=0)
    assert [cut(tok, r, stops) for r in out[:, enc["input_ids"].shape[1] :].tolist()] == want


def test_greedy_decoding_ignores_the_checkpoints_generation_config(tiny_base: Path) -> None:
    """A checkpoint's generation_config.json (a repetition penalty, suppressed tokens) does not change
    loralab's greedy answers, and is left as it was; no stop tokens at all is allowed."""
    _, tok = load_base(tiny_base)
    model = sharp_lm(tiny_base)
    prompts = [prompt_text(tok, q) for q in QUESTIONS]
    runs = free_runs(model, tok, prompts, 8)
    want = [cut(tok, r, []) for r in runs]
    model.generation_config.suppress_tokens = [runs[0][0]]
    model.generation_config.repetition_penalty = 5.0
    assert greedy_batch(model, tok, prompts, 8, []) == want
    assert model.generation_config.suppress_tokens == [runs[0][0]]
    assert cut(tok, free_runs(model, tok, prompts[:1], 8)[0], []) != want[0]  # HF itself would apply them


# ---------------------------------------------------------------------------
# Retention-aware scoring, on hand-made predictions
# ---------------------------------------------------------------------------


def _cot(b: str, c: str) -> str:
    return (
        "First, we need to answer the question:\nWho is A's spouse?\n"
        f"A's spouse is {b}.\nSecond, we need to answer the question :\nWhere was {b} born?\n"
        f"{b} was born in {c}.\nTherefore, the answer is {c}."
    )


def hand_records() -> list[dict[str, object]]:
    """3 triplets x (2 A->B, 2 B->C, 2 CoT two-hop) records; correctness chosen by hand."""
    one_hop = {  # triplet -> (A->B right?, B->C right?) per held-out template
        0: ([True, True], [True, True]),  # both hops kept
        1: ([True, True], [True, False]),  # one kept
        2: ([False, False], [False, False]),  # none kept
    }
    two_hop = {0: [True, False], 1: [False, False], 2: [True, False]}
    recs: list[dict[str, object]] = []
    for t, (ab, bc) in one_hop.items():
        recs += [{"task": "ab", "triplet": t, "correct": ok} for ok in ab]
        recs += [{"task": "bc", "triplet": t, "correct": ok} for ok in bc]
        for i, ok in enumerate(two_hop[t]):
            # step 1 names the right B only in the first question of each triplet; step 2 names C when right
            b = f"B{t}" if i == 0 else "Someone"
            c = f"C{t}" if ok else "Nowhere"
            recs.append(
                {
                    "task": "ac_cot",
                    "triplet": t,
                    "correct": ok,
                    "bridge": f"B{t}",
                    "gold": f"C{t}",
                    "output": _cot(b, c),
                }
            )
    return recs


def test_retention_metrics_on_hand_made_predictions() -> None:
    from loralab.evaluation.retention import by_triplet, retention_metrics

    m = retention_metrics(hand_records())
    got = {k: (r.k, r.n) for k, r in m.items()}
    assert got == {
        "twohop": (2, 6),
        "retained_ab": (4, 6),
        "retained_bc": (3, 6),
        "retained_both": (1, 3),  # only triplet 0
        "twohop_given_both": (1, 2),  # triplet 0's two questions: one right
        "cot_step1_bridge": (3, 6),  # the first question of each triplet
        "cot_step2_answer": (2, 6),  # the right ones
    }
    assert m["twohop_given_both"].value == 0.5
    assert by_triplet(hand_records()) == {
        "both": {"right": 1, "wrong": 1},
        "one": {"right": 0, "wrong": 2},
        "none": {"right": 1, "wrong": 1},
    }


def test_conditional_accuracy_with_an_empty_condition_is_n_0_not_0() -> None:
    from loralab.evaluation.retention import retention_metrics

    recs = [r for r in hand_records() if r["triplet"] != 0]  # no triplet keeps both hops
    cond = retention_metrics(recs)["twohop_given_both"]
    assert (cond.k, cond.n, cond.value, cond.ci) == (0, 0, None, None)
    assert str(cond) == "- (n=0)"
    assert retention_metrics([r for r in recs if r["task"] == "ac_cot"]) == {}  # no one-hop records


def test_cot_steps_split_and_whole_word_matching() -> None:
    from loralab.evaluation.retention import cot_steps, names

    s1, s2 = cot_steps(_cot("Ada Lovelace", "Paris"))
    assert "Ada Lovelace" in s1 and "Paris" not in s1 and "Paris" in s2 and "Therefore" not in s2
    assert cot_steps("no chain at all") == ("no chain at all", "")
    assert names("born in Paris.", "paris") and not names("born in Parish", "Paris")


def test_store_keeps_records_linked_by_triplet_and_reports_the_columns(tmp_path: Path) -> None:
    import sqlite3

    from loralab.experiments.store import add_cell, cells, connect, examples
    from loralab.report.table import markdown, store_records, to_csv

    cell = {
        "run": "r", "base": "b", "dataset": "d/ac_cot.test", "dataset_version": "v", "prompting": "cot",
        "method": "uniform", "library": "2", "n": 6, "correct": 2, "accuracy": 2 / 6, "ci_low": 0.1,
        "ci_high": 0.7, "config": {},
    }  # fmt: skip
    rows = [
        {"id": f"x{i}", "prompt": "p", "gold": r.get("gold", "g"), "output": r.get("output", ""), "extracted": "",
         **r}
        for i, r in enumerate(hand_records())
    ]  # fmt: skip
    con = connect(tmp_path / "db.sqlite")
    cid = add_cell(con, cell, rows)
    stored = examples(con, cid)
    assert len(stored) == 18 and {r["task"] for r in stored} == {"ab", "bc", "ac_cot"}
    assert sorted({r["triplet"] for r in stored}) == [0, 1, 2] and stored[4]["bridge"] == "B0"
    (row,) = cells(con)
    con.close()
    assert (row["metrics"]["twohop_given_both"].k, row["metrics"]["twohop_given_both"].n) == (1, 2)
    md = markdown([row])
    assert "two-hop given both kept" in md and "0.500 (n=2)" in md and "0.333 (n=3)" in md
    (written,) = csv.DictReader(io.StringIO(to_csv(store_records([row]))))
    lo, hi = wilson(1, 2)
    assert (written["accuracy"], written["n"], written["twohop_given_both"]) == ("0.3333", "6", "0.5000")
    assert (written["twohop_given_both_n"], written["twohop_given_both_ci_high"]) == ("2", f"{hi:.4f}")
    assert (written["twohop_given_both_ci_low"], written["retained_ab_n"]) == (f"{lo:.4f}", "6")
    # a database from before the retention columns is upgraded on open
    old = tmp_path / "old.sqlite"
    raw = sqlite3.connect(old)
    raw.executescript(
        "CREATE TABLE cells (id INTEGER PRIMARY KEY, run TEXT, base TEXT, dataset TEXT, dataset_version TEXT,"
        " prompting TEXT, method TEXT, library TEXT, n INTEGER, correct INTEGER, accuracy REAL, ci_low REAL,"
        " ci_high REAL, config TEXT, created TEXT);"
        "CREATE TABLE examples (cell_id INTEGER, example_id TEXT, prompt TEXT, gold TEXT, output TEXT,"
        " extracted TEXT, correct INTEGER NOT NULL);"
    )
    raw.close()
    con = connect(old)
    assert add_cell(con, cell, rows) == 1 and cells(con)[0]["metrics"]["retained_both"].k == 1
    con.close()
