"""Tool-integrated reasoning: generation stops after a ```python block, the block runs in the sandbox, its
(truncated) output is appended as a ```output block, and generation continues; at most `max_rounds` runs.

The loop is written against `Generate`, any callable `(prompt, stop) -> continuation` that stops after the
first stop string it produces (and includes it), so a scripted fake model can drive it in tests.
`HFGenerate` is that callable for a Hugging Face model and tokenizer (greedy).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loralab.gsm.sandbox import Limits, SandboxResult, run_code

CODE_OPEN = "```python"
# the fence that closes a code block, on its own line; a model that writes the output fence itself is also
# stopped there (Qwen2.5-Math's TIR models do)
STOPS = ("\n```\n", "```output")
_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)\n?```", re.DOTALL)


class Generate(Protocol):
    """A text generator: the continuation of `prompt`, ending right after the first of `stop` it writes
    (included), or wherever the model stopped on its own."""

    def __call__(self, prompt: str, stop: Sequence[str]) -> str: ...


@dataclass(frozen=True)
class CodeRun:
    """One round: the code the model wrote, what the sandbox returned, and the text appended for it."""

    code: str
    result: SandboxResult
    shown: str


@dataclass(frozen=True)
class TIRResult:
    """The whole continuation (model text with the appended ```output blocks) and the rounds it took."""

    text: str
    runs: tuple[CodeRun, ...] = field(default_factory=tuple)


def truncate_output(text: str, max_chars: int = 800) -> str:
    """Output as the model sees it: at most `max_chars` characters, the head and the tail kept around a
    marker that says how much was cut."""
    if len(text) <= max_chars:
        return text
    keep = max(max_chars - 40, 2)
    head, tail = text[: keep // 2], text[len(text) - keep // 2 :]
    return f"{head}\n... [{len(text) - 2 * (keep // 2)} characters cut] ...\n{tail}"


_KILLED = {
    "timeout": "TimeoutError: the code ran past the time limit",
    "cpu": "TimeoutError: the code ran past the CPU time limit",
    "output": "the output was cut: it ran past the output limit",
}


def shown_output(result: SandboxResult, max_chars: int = 800) -> str:
    """What goes into the ```output block: stdout, then, if the run failed, why: the limit that killed it,
    else the last line of stderr (the exception)."""
    text = result.stdout.rstrip("\n")
    if not result.ok:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = _KILLED.get(result.limit or "") or (
            lines[-1] if lines else f"exit status {result.exit_code}"
        )
        text = f"{text}\n{reason}" if text else reason
    return truncate_output(text, max_chars)


def format_round(code: str, output: str) -> str:
    """A complete round as the model should write it (and as training text for TIR solutions)."""
    return f"{CODE_OPEN}\n{code.rstrip()}\n```\n```output\n{output}\n```\n"


def _pending_code(piece: str) -> tuple[str, str] | None:
    """If `piece` ends with a closed ```python block (possibly followed by the model's own ```output fence),
    (the piece cut right after that block's closing fence, the code); else None."""
    body = piece[: -len("```output")] if piece.endswith("```output") else piece
    body = body.rstrip()
    blocks = list(_BLOCK.finditer(body))
    if not blocks or blocks[-1].end() != len(body):
        return None
    return body + "\n", blocks[-1].group(1)


def tir_generate(
    generate: Generate | Callable[[str, Sequence[str]], str],
    prompt: str,
    max_rounds: int = 4,
    limits: Limits | None = None,
    max_output_chars: int = 800,
    run: Callable[[str, Limits | None], SandboxResult] = run_code,
) -> TIRResult:
    """Generate with code execution: each time the model closes a ```python block, run it in the sandbox and
    append its output; after `max_rounds` runs the model writes once more, without stop strings, to finish.
    `run` is the executor (the sandbox; a test may pass a recorder)."""
    if max_rounds < 0:
        raise ValueError(f"max_rounds must not be negative, got {max_rounds}")
    text = ""
    runs: list[CodeRun] = []
    for _ in range(2 * max_rounds + 1):
        last = len(runs) == max_rounds
        piece = generate(prompt + text, () if last else STOPS)
        pending = None if last else _pending_code(piece)
        if pending is None:
            text += piece
            if last or not piece.endswith(STOPS):
                break
            continue  # a stop string outside a python block (a bare ``` fence): keep writing
        cut, code = pending
        result = run(code, limits)
        shown = shown_output(result, max_output_chars)
        text += cut + f"```output\n{shown}\n```\n"
        runs.append(CodeRun(code, result, shown))
    return TIRResult(text, tuple(runs))


class HFGenerate:
    """Greedy generation with a Hugging Face causal LM for `tir_generate`: the prompt is used as given (render
    it first, e.g. with `loralab.gsm.prompts.render`), generation ends at EOS, at the chat end marker, after
    `max_new_tokens`, or right after the first stop string in the generated text (a stop string is looked
    for in the new text only: one that begins in the prompt does not count)."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 512) -> None:
        from loralab.models.chat import stop_token_ids

        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens
        self.eos = stop_token_ids(tokenizer)

    def __call__(self, prompt: str, stop: Sequence[str]) -> str:
        import torch
        from transformers import StoppingCriteriaList

        device = next(self.model.parameters()).device
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos[0]
        criteria = StoppingCriteriaList([_stop_on_text(self.tokenizer, ids.shape[1], stop)] if stop else [])
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                eos_token_id=self.eos,
                pad_token_id=pad,
                stopping_criteria=criteria,
            )
        new = out[0, ids.shape[1] :].tolist()
        new = new[: next((i for i, t in enumerate(new) if t in self.eos), len(new))]
        return cut_at_stop(str(self.tokenizer.decode(new, skip_special_tokens=True)), stop)


def _stop_on_text(tokenizer: Any, start: int, stop: Sequence[str]) -> Any:
    """A transformers stopping criterion: true once the text generated after position `start` contains a
    stop string (one sequence; the text is decoded again at each step, which is cheap next to the model)."""
    import torch
    from transformers import StoppingCriteria

    class StopOnText(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            text = tokenizer.decode(input_ids[0, start:].tolist(), skip_special_tokens=True)
            done = any(s in text for s in stop)
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StopOnText()


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to and including the earliest stop string in it (a token may run past the stop string)."""
    ends = [i + len(s) for s in stop if s and (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text
