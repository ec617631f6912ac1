"""Answer extraction, numeric grading and the math prompts, on hand-written model outputs."""

from __future__ import annotations

from typing import Any

import pytest

from loralab.gsm.extract import answer_value, extract_answer, gold_value, grade, last_boxed, numbers_match
from loralab.gsm.prompts import COT_SYSTEM, GSM8K_EXEMPLARS, PROMPTS, TIR_SYSTEM, messages, plain_text, render


@pytest.mark.parametrize(
    ("text", "method", "value"),
    [
        # the four markers, each alone
        ("We get 4 + 5 = 9, so \\boxed{9}.", "boxed", 9.0),
        ("So the answer is 18 apples.", "answer-is", 18.0),
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "hash", 72.0),
        ("I think 5 apples and then 7", "last-number", 7.0),
        # the order: boxed beats "the answer is", which beats ####, which beats the last number
        ("The answer is 5. Checking again: \\boxed{6}", "boxed", 6.0),
        ("The answer is 7\n#### 8", "answer-is", 7.0),
        ("#### 3\nthen 4 more", "hash", 3.0),
        # the last of several
        ("first \\boxed{3}, on reflection \\boxed{4}", "boxed", 4.0),
        ("The answer is 2. No wait, the answer is 3.", "answer-is", 3.0),
        # nested braces, LaTeX fractions, mixed numbers
        ("\\boxed{{12}}", "boxed", 12.0),
        ("\\boxed{\\frac{1}{2}}", "boxed", 0.5),
        ("\\boxed{\\dfrac{3}{4}}", "boxed", 0.75),
        ("\\boxed{2\\frac{1}{2}}", "boxed", 2.5),
        ("\\boxed{-\\frac{1}{4}}", "boxed", -0.25),
        ("The answer is 1/2 of the pie.", "answer-is", 0.5),
        ("\\boxed{18 \\text{ dollars}}", "boxed", 18.0),
        ("\\boxed 5", "boxed", 5.0),
        # thousands, currency, percent, decimals, signs
        ("\\boxed{1,000}", "boxed", 1000.0),
        ("\\boxed{1{,}000}", "boxed", 1000.0),
        ("It costs $1,250.50 in total", "last-number", 1250.5),
        ("The answer is \\$5.", "answer-is", 5.0),
        ("The answer is 20\\%.", "answer-is", 20.0),
        ("So 50% of them.", "last-number", 50.0),
        ("The final answer is 32.50.", "answer-is", 32.5),
        ("The temperature fell to -3", "last-number", -3.0),
        ("The answer is \u22127.", "answer-is", -7.0),
        # a minus between two numbers is a subtraction, not a sign
        ("from 10-3", "last-number", 3.0),
        # "the answer is" with the number on the next line
        ("The answer is:\n 42", "answer-is", 42.0),
        # an unclosed \boxed{ is no boxed answer; the last number decides
        ("so \\boxed{12", "last-number", 12.0),
    ],
)
def test_extraction(text: str, method: str, value: float) -> None:
    got_method, _, got_value = answer_value(text)
    assert got_method == method
    assert got_value == pytest.approx(value)


def test_last_boxed_keeps_nested_content() -> None:
    assert last_boxed("a \\boxed{\\frac{1}{2}} b") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{a{b{c}}d} and \\fbox{e}") == "e"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{open") is None


def test_no_number_is_no_answer_never_a_crash() -> None:
    for text in ("I cannot solve this.", "", "\\boxed{}", "The answer is unknown."):
        g = grade(text, 18)
        assert (g.correct, g.value, g.status) == (False, None, "no answer")
    assert extract_answer("nothing here") is None
    # a declared non-numeric answer is not rescued by a number from the reasoning before it
    g = grade("5 + 3 = 8 so \\boxed{x}", 8)
    assert (g.method, g.answer, g.value, g.status) == ("boxed", "x", None, "no answer")


def test_grading_compares_numbers_with_tolerance() -> None:
    assert grade("\\boxed{32.50}", "32.5").correct
    assert grade("The answer is $18.", 18).correct
    assert grade("\\boxed{1000}", "1,000").correct
    assert grade("\\boxed{72}", "Natalia sold 48/2 = 24 clips in May.\n#### 72").correct
    assert grade("\\boxed{0.30000000000000004}", 0.3).correct
    assert grade("\\boxed{-5}", "-5").correct
    assert grade("\\boxed{\\frac{1}{2}}", 0.5).correct
    g = grade("\\boxed{0.33}", 1 / 3)
    assert (g.correct, g.status) == (False, "wrong")
    assert not grade("\\boxed{5}", -5).correct
    assert not grade("\\boxed{10001}", 10000).correct
    assert numbers_match(32.5, 32.50) and not numbers_match(1.0, 1.001)
    # a looser tolerance is the caller's choice
    assert grade("\\boxed{0.33}", 1 / 3, abs_tol=0.01).correct


def test_gold_without_a_number_is_a_clear_error() -> None:
    assert gold_value("$1,000") == 1000.0 and gold_value(7) == 7.0
    with pytest.raises(ValueError, match="holds no number"):
        gold_value("unknown")


# ---------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------


def test_registry_and_the_8_exemplars() -> None:
    assert list(PROMPTS) == ["cot", "gsm8k-8shot", "tir"]
    assert all(p.description and p.paper for p in PROMPTS.values())
    assert len(GSM8K_EXEMPLARS) == 8 and len({q for q, _ in GSM8K_EXEMPLARS}) == 8
    # each worked answer ends in "The answer is N." with Wei et al.'s numbers
    answers = [answer_value(a) for _, a in GSM8K_EXEMPLARS]
    assert [(m, v) for m, _, v in answers] == [("answer-is", float(n)) for n in (6, 5, 39, 8, 9, 29, 33, 8)]


def test_plain_text_prompts() -> None:
    q = "Tom has 3 apples. How many?"
    assert plain_text("cot", q) == f"{q}\n\n{COT_SYSTEM}\n"
    assert plain_text("tir", q) == f"{q}\n\n{TIR_SYSTEM}\n"
    shots = plain_text("gsm8k-8shot", q)
    assert shots.startswith("Q: There are 15 trees in the grove.")
    assert shots.endswith(f"The answer is 8.\n\nQ: {q}\nA:")
    assert shots.count("Q: ") == 9 and shots.count("\nA: ") == 8


def test_messages_and_chat_template() -> None:
    q = "What is 2 + 2?"
    assert messages("cot", q) == [{"role": "system", "content": COT_SYSTEM}, {"role": "user", "content": q}]
    shots = messages("gsm8k-8shot", q)
    assert len(shots) == 17 and [m["role"] for m in shots[:2]] == ["user", "assistant"]
    assert shots[-1] == {"role": "user", "content": q}

    class Tok:
        chat_template = "some template"

        def apply_chat_template(self, msgs: list[dict[str, str]], **kwargs: Any) -> str:
            assert kwargs == {"add_generation_prompt": True, "tokenize": False}
            return "|".join(m["role"] for m in msgs)

    assert render("tir", q, Tok()) == "system|user"
    assert render("tir", q) == plain_text("tir", q)
    with pytest.raises(KeyError, match="choose one of cot, gsm8k-8shot, tir"):
        render("unknown", q)
