from __future__ import annotations

from pathlib import Path

import pytest

from loralab.evaluate import extract, generate, is_correct, wilson
from loralab.evaluate.generate import greedy_batch
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
