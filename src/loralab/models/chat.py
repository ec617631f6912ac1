"""The chat format of the built-in base (ChatML, as in the Qwen2.5 family) and prompt rendering for any base."""

from __future__ import annotations

from typing import Any

IM_START, IM_END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (EOT, IM_START, IM_END)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def render_turn(question: str, answer: str | None = None) -> str:
    """The built-in template, rendered in Python (used to write the pretraining corpus)."""
    text = f"{IM_START}user\n{question}{IM_END}\n{IM_START}assistant\n"
    return text if answer is None else text + f"{answer}{IM_END}\n"


def prompt_text(tokenizer: Any, question: str) -> str:
    """The generation prompt for `question` under the base's own chat template (plain text if it has none)."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": question}]
        return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return question + "\n"


def end_text(tokenizer: Any) -> str:
    """What closes an answer in training: the chat end marker if the template has one, else EOS."""
    template = getattr(tokenizer, "chat_template", None) or ""
    if IM_END in template:
        return IM_END + "\n"
    return str(tokenizer.eos_token or "")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end generation: EOS and, where the vocabulary has it, the chat end marker."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    for tok in (IM_END, "<|eot_id|>", "<end_of_turn>"):
        if tok in vocab:
            ids.add(int(vocab[tok]))
    return sorted(ids)
