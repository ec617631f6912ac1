"""Error analysis on hand-written solutions of Leah's problem (32 + 42 chocolates, 35 eaten: 39 left, 2 steps)
and the optional LLM judge against a local fake endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from loralab.errors import LoralabError
from loralab.gsm.analysis import (
    analyze,
    arithmetic_statements,
    count_steps,
    evaluate,
    judge_error,
    solution_type,
    tally,
)
from loralab.gsm.prompts import GSM8K_EXEMPLARS

GOLD, STEPS = 39, 2


def test_evaluator() -> None:
    assert evaluate("(3 + 5) * 2") == 16
    assert evaluate("3 + 5 * 2") == 13
    assert evaluate("-3 + 5") == 2
    assert evaluate("2 ^ 3 ^ 2") == 512  # right-associative
    assert evaluate("50% * 80") == 40
    assert evaluate("1,200 / 4") == 300
    assert evaluate("5 / 0") is None and evaluate("3 +") is None and evaluate("(1 + 2") is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("So in total they had 32 + 42 = 74.", [("32 + 42", 74.0, True)]),
        ("5 bagels will be 5 x 3 = 15 dollars.", [("5 * 3", 15.0, True)]),
        ("So 3 + 4 = 8 apples.", [("3 + 4", 8.0, False)]),
        # rounding at the claim's written precision is not an error; more than that is
        ("Each gets 10 / 3 = 3.33 cups.", [("10 / 3", 3.33, True)]),
        ("Each gets 10 / 3 = 3.4 cups.", [("10 / 3", 3.4, False)]),
        ("That is 1/4 = 25% of them.", [("1/4", 0.25, True)]),
        ("Two cost $1,200 * 2 = $2,400.", [("1,200 * 2", 2400.0, True)]),
        ("Then (3 + 5) * 2 = 16.", [("(3 + 5) * 2", 16.0, True)]),
        ("Then 3 + 5 * 2 = 16.", [("3 + 5 * 2", 16.0, False)]),
        ("It is \\( 12 \\times 4 = 48 \\).", [("12 * 4", 48.0, True)]),
        ("It is \\frac{12}{4} = 3.", [("((12)/(4))", 3.0, True)]),
        ("The change is \u22123 + 5 = 2.", [("-3 + 5", 2.0, True)]),
        # a chain "2 * 3 = 6 * 4 = 24": the left part is not a statement with a plain result, the right one is
        ("So 2 * 3 = 6 * 4 = 24.", [("6 * 4", 24.0, True)]),
        # no statement: no operator, a comparison, code and output blocks
        ("x = 5 and y = 7", []),
        ("check 3 + 4 == 8", []),
        ("```python\nprint(3 + 4 == 8)\n```\n```output\n3 + 4 = 8\n```\n", []),
    ],
)
def test_arithmetic_statements(text: str, found: list[tuple[str, float, bool]]) -> None:
    got = [(s.expression, s.claimed, s.ok) for s in arithmetic_statements(text)]
    assert got == found


def test_wei_exemplars_have_only_true_statements() -> None:
    statements = [arithmetic_statements(a) for _, a in GSM8K_EXEMPLARS]
    # "9 + 20 is 29" and "23 - 15 is 8" are written with "is", not "=", and are not counted
    assert [len(s) for s in statements] == [1, 1, 2, 1, 1, 1, 2, 1]
    assert all(s.ok for group in statements for s in group)


CORRECT = GSM8K_EXEMPLARS[2][1]
CALCULATION = "They had 32 + 42 = 74. After eating 35, they had 74 - 35 = 38. The answer is 38."
MISSING = "They had 32 + 42 = 74 chocolates. The answer is 74."
SEMANTIC = "They had 32 + 42 = 74. They bought 35 more: 74 + 35 = 109. The answer is 109."
NOTHING = "I am not sure how to do this."
CODE_OK = (
    "```python\nleah = 32\nsister = 42\nleft = leah + sister - 35\nprint(left)\n```\n"
    "```output\n39\n```\nThe answer is \\boxed{39}."
)
CODE_SHORT = "```python\nprint(32 + 42)\n```\n```output\n74\n```\nSo \\boxed{74}."
BARE_CODE = "def solve():\n    total = 32 + 42\n    return total - 35\n\nprint(solve())"


@pytest.mark.parametrize(
    ("text", "stype", "error", "steps", "status"),
    [
        (CORRECT, "natural language", "none", 2, "correct"),
        (CALCULATION, "natural language", "calculation", 2, "wrong"),
        (MISSING, "natural language", "step missing", 1, "wrong"),
        (SEMANTIC, "natural language", "semantic", 2, "wrong"),
        (NOTHING, "none", "semantic", 0, "no answer"),
        (CODE_OK, "code", "none", 1, "correct"),
        (CODE_SHORT, "code", "step missing", 1, "wrong"),
        # no marker: the last number, 35, is read as the answer
        (BARE_CODE, "code", "semantic", 2, "wrong"),
    ],
)
def test_analyze(text: str, stype: str, error: str, steps: int, status: str) -> None:
    a = analyze(text, GOLD, reference_steps=STEPS)
    assert (a.solution_type, a.error_type, a.steps, a.grade.status) == (stype, error, steps, status)
    assert solution_type(text) == stype and count_steps(text) == steps


def test_calculation_error_names_the_false_statement() -> None:
    a = analyze(CALCULATION, GOLD, reference_steps=STEPS)
    assert [(s.expression, s.claimed, s.value) for s in a.false_statements] == [("74 - 35", 38.0, 39.0)]


def test_without_reference_steps_no_step_missing() -> None:
    assert analyze(MISSING, GOLD).error_type == "semantic"
    # a calculation error wins over a missing step
    assert analyze("32 + 42 = 75. The answer is 75.", GOLD, reference_steps=STEPS).error_type == "calculation"


def test_tally_counts_every_cell() -> None:
    texts = [CORRECT, CALCULATION, MISSING, SEMANTIC, NOTHING, CODE_OK, CODE_SHORT]
    table = tally(analyze(t, GOLD, reference_steps=STEPS) for t in texts)
    assert table == {
        "natural language": {"none": 1, "calculation": 1, "step missing": 1, "semantic": 1},
        "code": {"none": 1, "calculation": 0, "step missing": 1, "semantic": 0},
        "none": {"none": 0, "calculation": 0, "step missing": 0, "semantic": 1},
    }


# ---------------------------------------------------------------------------
# LLM judge against a local fake OpenAI-compatible server
# ---------------------------------------------------------------------------


class _Judge(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []  # noqa: RUF012 - the test's record of what the server received
    reply: str = "calculation\nThe step 74 - 35 = 38 is wrong."
    status: int = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": self.reply}}]})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def judge_server() -> Iterator[str]:
    _Judge.requests, _Judge.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Judge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_judge_skipped_without_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORALAB_JUDGE_URL", raising=False)
    assert judge_error("Leah ...", CALCULATION, GOLD) is None


def test_judge_through_fake_endpoint(judge_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = judge_error("Leah had 32 chocolates ...", CALCULATION, GOLD, url=judge_server, api_key="k1")
    assert verdict is not None and verdict.label == "calculation"
    (req,) = _Judge.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k1"
    assert req["body"]["temperature"] == 0
    assert "Correct answer: 39" in req["body"]["messages"][1]["content"]
    # the URL may also come from the environment, and may name the full path
    monkeypatch.setenv("LORALAB_JUDGE_URL", judge_server + "/chat/completions")
    monkeypatch.delenv("LORALAB_JUDGE_API_KEY", raising=False)
    _Judge.reply = "Step missing: the 35 eaten are never subtracted."
    verdict = judge_error("Leah ...", MISSING, GOLD)
    assert verdict is not None and verdict.label == "step missing"
    assert _Judge.requests[-1]["path"] == "/v1/chat/completions" and _Judge.requests[-1]["auth"] is None


def test_judge_failure_names_the_endpoint(judge_server: str) -> None:
    _Judge.status = 500
    with pytest.raises(LoralabError, match=r"LLM judge http://127\.0\.0\.1:\d+/v1/chat/completions"):
        judge_error("q", "r", 1, url=judge_server)
