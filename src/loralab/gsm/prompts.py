"""The three math prompts of the paper's GSM experiments, as chat messages and as rendered text.

- `cot`: 0-shot chain of thought with Qwen2.5-Math's system prompt (final answer in \\boxed{}).
- `gsm8k-8shot`: the 8 chain-of-thought exemplars of Wei et al. (2022), "Q: ... A: ... The answer is N."
- `tir`: tool-integrated reasoning with Qwen2.5-Math's system prompt: the model reasons, writes a ```python
  block, sees its ```output block (appended by `loralab.gsm.tir`) and continues, ending in \\boxed{}.

A prompt is a list of messages; `render` applies the tokenizer's chat template when it has one, else writes
the plain-text form (exemplars as "Q:/A:" pairs, a system prompt as a first paragraph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
TIR_SYSTEM = (
    "Please integrate natural language reasoning with programs to solve the problem above, "
    "and put your final answer within \\boxed{}."
)

# Wei et al. (2022), "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models", Table 20:
# the exemplars used for GSM8K and the other math word problem benchmarks, worded as published.
GSM8K_EXEMPLARS: tuple[tuple[str, str], ...] = (
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are "
        "done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must "
        "have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in "
        "total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After "
        "eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops "
        "did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny "
        "20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he "
        "have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. "
        "5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from "
        "monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 "
        "computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many "
        "golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 "
        "more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 "
        "dollars left. 23 - 15 is 8. The answer is 8.",
    ),
)


@dataclass(frozen=True)
class PromptStyle:
    """A registered prompt: its system prompt (or None), its exemplars and where it comes from."""

    name: str
    description: str
    paper: str
    system: str | None = None
    exemplars: tuple[tuple[str, str], ...] = ()


PROMPTS: dict[str, PromptStyle] = {}


def _register(style: PromptStyle) -> None:
    if style.name in PROMPTS:
        raise ValueError(f"prompt style {style.name!r} registered twice")
    PROMPTS[style.name] = style


_register(
    PromptStyle(
        "cot",
        "0-shot chain of thought, final answer in \\boxed{}",
        "Yang et al. 2024, Qwen2.5-Math (CoT system prompt)",
        system=COT_SYSTEM,
    )
)
_register(
    PromptStyle(
        "gsm8k-8shot",
        "8 worked GSM8K-style exemplars, 'The answer is N.'",
        "Wei et al. 2022, Chain-of-Thought Prompting (Table 20)",
        exemplars=GSM8K_EXEMPLARS,
    )
)
_register(
    PromptStyle(
        "tir",
        "tool-integrated reasoning: reason, ```python, ```output, continue; answer in \\boxed{}",
        "Yang et al. 2024, Qwen2.5-Math (TIR system prompt)",
        system=TIR_SYSTEM,
    )
)


def get_style(name: str) -> PromptStyle:
    """The registered style `name`; a KeyError lists the registered ones."""
    if name not in PROMPTS:
        raise KeyError(f"prompt style {name!r}: choose one of {', '.join(PROMPTS)}")
    return PROMPTS[name]


def messages(style: str, question: str) -> list[dict[str, str]]:
    """The chat messages for `question`: system prompt, exemplars as user/assistant turns, the question."""
    spec = get_style(style)
    out = [{"role": "system", "content": spec.system}] if spec.system else []
    for q, a in spec.exemplars:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    out.append({"role": "user", "content": question})
    return out


def plain_text(style: str, question: str) -> str:
    """The prompt without a chat template: a system prompt as its own paragraph after the question (where
    Qwen2.5-Math's wording, "the problem above", puts it), exemplars as "Q: ...\\nA: ..." blocks."""
    spec = get_style(style)
    shots = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in spec.exemplars)
    if spec.exemplars:
        return f"{shots}Q: {question}\nA:"
    return f"{question}\n\n{spec.system}\n" if spec.system else f"{question}\n"


def render(style: str, question: str, tokenizer: Any = None) -> str:
    """The generation prompt: the tokenizer's chat template over `messages` when it has one, else
    `plain_text`."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        msgs = messages(style, question)
        return str(tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))
    return plain_text(style, question)
