"""GSM evaluation: generate with a prompt style, extract and grade the answer, analyse the error, store.

One loop for every prompt style. `cot` and `gsm8k-8shot` are one batched greedy generation over the rendered
prompts (`prompts.render`). `tir` runs `tir.tir_generate` (the one tool-integrated loop: stop after a
```python block, run it in the sandbox, append its ```output, continue) for every example at once: each
example's loop runs in its own thread, and their generation requests are served together, one batch per
round (`_Lockstep`), so a round of TIR costs one batched generation, not one per example. Greedy decoding
cut at the first stop string gives the same text as stopping there, so batching changes nothing but speed.

Every output is graded with `extract.grade` (an output without a number is scored "no answer", never an
error) and analysed with `analysis.analyze` against the row's `steps` (the template's computation graph).
Model-written code only ever runs inside `sandbox.run_code`: a hostile block (an endless loop, a fork or
memory bomb, a socket) is stopped by its limits, its failure is shown to the model as the ```output, and the
example is scored like any other.

What is stored (`loralab.experiments.store`): one `cells` row per evaluation (prompting = the prompt style)
and one `examples` row per question (`extracted` holds the extracted answer text, "" when none) with the
analysis in typed columns: `status` (correct, wrong, no answer), `solution_type`, `error_type`, `steps`,
`extraction` (how the answer was found), `code_runs` and `limits` (the sandbox limits hit, comma-separated).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from loralab.errors import LoralabError
from loralab.evaluation import Evaluation
from loralab.evaluation.generate import MAX_NEW_TOKENS_LIMIT
from loralab.gsm.analysis import analyze
from loralab.gsm.extract import gold_value
from loralab.gsm.prompts import PROMPTS, render
from loralab.gsm.sandbox import Limits, SandboxResult, run_code
from loralab.gsm.tir import TIRResult, cut_at_stop, tir_generate

# bump when a change alters what a stored GSM cell means (prompt rendering, grading, analysis)
GSM_EVALUATOR_VERSION = "gsm-eval-1"


class BatchGenerate(Protocol):
    """Greedy continuations of already-rendered prompts, in order (each ends where the model stopped or at the
    token budget; stop strings are cut by the caller)."""

    def __call__(self, prompts: Sequence[str]) -> list[str]: ...


class DecodeConfig(BaseModel):
    """How answers are decoded and code is run (part of what a cell's result means)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(
        256, ge=1, le=MAX_NEW_TOKENS_LIMIT, description="new tokens per generation call (per TIR round)"
    )
    max_rounds: int = Field(2, ge=0, description="TIR: code blocks run per answer, at most")
    max_output_chars: int = Field(400, ge=20, description="TIR: characters of a run's output shown")
    timeout_s: float = Field(5.0, gt=0, description="TIR sandbox: wall-clock seconds per code block")
    cpu_s: int = Field(2, ge=1, description="TIR sandbox: CPU seconds per code block")
    memory_mb: int = Field(512, ge=32, description="TIR sandbox: address space in MiB per code block")

    def limits(self) -> Limits:
        return Limits(timeout_s=self.timeout_s, cpu_s=self.cpu_s, memory_mb=self.memory_mb)


def hf_batch_generate(model: Any, tokenizer: Any, max_new_tokens: int, batch_size: int = 32) -> BatchGenerate:
    """A `BatchGenerate` over a Hugging Face model: prompts sorted by length, batched greedy decoding with the
    KV cache (`evaluate.generate.greedy_batch`), stopping at the tokenizer's end tokens."""
    from loralab.evaluation.generate import greedy_batch
    from loralab.faults import checkpoint
    from loralab.models.chat import stop_token_ids

    stops = stop_token_ids(tokenizer)

    def generate(prompts: Sequence[str]) -> list[str]:
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out = [""] * len(prompts)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            texts = greedy_batch(model, tokenizer, [prompts[i] for i in idx], max_new_tokens, stops)
            for i, text in zip(idx, texts, strict=True):
                out[i] = text
            checkpoint("eval-batch")
        return out

    return generate


class _Lockstep:
    """Serves the `(prompt, stop) -> text` calls of many `tir_generate` threads with one batched generation
    per round: it waits until every live thread has asked (or finished), generates for all of them, cuts each
    continuation at its first stop string and wakes them."""

    def __init__(self, generate: BatchGenerate, workers: int) -> None:
        self._generate = generate
        self._live = workers
        self._cv = threading.Condition()
        self._requests: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._answers: dict[int, str] = {}
        self._error: BaseException | None = None

    def client(self, worker: int) -> Callable[[str, Sequence[str]], str]:
        def ask(prompt: str, stop: Sequence[str]) -> str:
            with self._cv:
                self._requests[worker] = (prompt, tuple(stop))
                self._cv.notify_all()
                while worker not in self._answers and self._error is None:
                    self._cv.wait()
                if self._error is not None:
                    raise LoralabError(f"generation failed: {self._error}")
                return self._answers.pop(worker)

        return ask

    def done(self) -> None:
        with self._cv:
            self._live -= 1
            self._cv.notify_all()

    def serve(self) -> None:
        while True:
            with self._cv:
                while self._live > 0 and len(self._requests) < self._live:
                    self._cv.wait()
                if self._live == 0:
                    return
                batch = sorted(self._requests.items())
                self._requests.clear()
            try:
                texts = self._generate([prompt for _, (prompt, _) in batch])
            except BaseException as exc:
                with self._cv:
                    self._error = exc
                    self._cv.notify_all()
                raise
            with self._cv:
                for (worker, (_, stop)), text in zip(batch, texts, strict=True):
                    self._answers[worker] = cut_at_stop(text, stop) if stop else text
                self._cv.notify_all()


def tir_batch(
    generate: BatchGenerate,
    prompts: Sequence[str],
    decode: DecodeConfig,
    batch_size: int = 32,
    parallel_runs: int = 4,
    run: Callable[[str, Limits | None], SandboxResult] = run_code,
) -> list[TIRResult]:
    """`tir_generate` for every prompt, `batch_size` examples in lockstep, at most `parallel_runs` sandboxed
    programs at a time. `run` is the executor (the sandbox; a test may pass a recorder)."""
    gate = threading.Semaphore(parallel_runs)

    def gated(code: str, limits: Limits | None) -> SandboxResult:
        with gate:
            return run(code, limits)

    out: list[TIRResult | None] = [None] * len(prompts)
    failures: list[BaseException] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(range(start, min(start + batch_size, len(prompts))))
        lockstep = _Lockstep(generate, len(chunk))

        def work(i: int, worker: int, lockstep: _Lockstep = lockstep) -> None:
            try:
                out[i] = tir_generate(
                    lockstep.client(worker),
                    prompts[i],
                    decode.max_rounds,
                    decode.limits(),
                    decode.max_output_chars,
                    gated,
                )
            except BaseException as exc:  # re-raised in the caller's thread below
                failures.append(exc)
            finally:
                lockstep.done()

        threads = [threading.Thread(target=work, args=(i, k), daemon=True) for k, i in enumerate(chunk)]
        for t in threads:
            t.start()
        try:
            lockstep.serve()
        finally:
            for t in threads:
                t.join()
        if failures:
            raise failures[0]
    return [r for r in out if r is not None]


def _checked_gold(example: dict[str, Any], where: str = "") -> None:
    try:
        gold_value(example["gold"])
    except (ValueError, KeyError) as exc:
        raise LoralabError(f"{where}example {example.get('id', '?')}: {exc}") from None


def check_golds(data: Path, examples: Sequence[dict[str, Any]]) -> None:
    """Before any model loads: every example's gold answer must hold a number (the error names the file)."""
    for i, example in enumerate(examples, 1):
        _checked_gold({"id": f"#{i}", **example}, f"{data}: ")


def evaluate_gsm(
    generate: BatchGenerate,
    examples: Sequence[dict[str, Any]],
    prompt: str = "cot",
    tokenizer: Any = None,
    decode: DecodeConfig | None = None,
    batch_size: int = 32,
    run: Callable[[str, Limits | None], SandboxResult] = run_code,
) -> Evaluation:
    """Answer every example's question (`prompt`) with prompt style `prompt`, rendered with `tokenizer`'s chat
    template (plain text without one), grade against `gold` and analyse against `steps`."""
    if prompt not in PROMPTS:
        raise LoralabError(f"--prompt {prompt}: choose one of {', '.join(PROMPTS)}")
    decode = decode or DecodeConfig()
    for ex in examples:
        _checked_gold(ex)
    rendered = [render(prompt, ex["prompt"], tokenizer) for ex in examples]
    runs: list[TIRResult | None]
    if prompt == "tir":
        results = tir_batch(generate, rendered, decode, batch_size, run=run)
        texts, runs = [r.text for r in results], list(results)
    else:
        texts, runs = generate(rendered), [None] * len(rendered)
    rows, analyses, details = [], [], []
    for ex, text, tir in zip(examples, texts, runs, strict=True):
        a = analyze(text, ex["gold"], ex.get("steps"))
        analyses.append(a)
        rows.append(
            {
                "id": ex.get("id", ""),
                "prompt": ex["prompt"],
                "gold": str(ex["gold"]),
                "output": text,
                "extracted": a.grade.answer or "",
                "correct": a.grade.correct,
                "task": ex.get("task"),
            }
        )
        details.append(
            {
                "status": a.grade.status,
                "solution_type": a.solution_type,
                "error_type": a.error_type,
                "steps": a.steps,
                "method": a.grade.method,
                "code_runs": len(tir.runs) if tir else 0,
                "limits": [r.result.limit for r in tir.runs if r.result.limit] if tir else [],
            }
        )
        rows[-1].update(analysis_columns(details[-1]))
    return Evaluation(rows, analyses=analyses, details=details)


def analysis_columns(detail: dict[str, Any]) -> dict[str, Any]:
    """An example's analysis as the store's typed columns (`loralab.experiments.store.EXAMPLE_EXTRAS`)."""
    return {
        "status": detail["status"],
        "solution_type": detail["solution_type"],
        "error_type": detail["error_type"],
        "steps": detail["steps"],
        "extraction": detail["method"],
        "code_runs": detail["code_runs"],
        "limits": ",".join(detail["limits"]),
    }
