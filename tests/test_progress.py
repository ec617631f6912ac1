"""Progress off a terminal: a plain line at most every LOG_EVERY seconds, and one at the end of long work."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from loralab import progress as progress_module


def test_plain_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]
    bar = progress_module._Progress(console=Console(file=io.StringIO()), get_time=lambda: now[0])
    with bar:
        task = bar.add_task("training lora1", total=8)
        for _ in range(8):
            now[0] += 25.0  # each step takes 25 s: a line after steps 3 (75 s) and 6 (150 s), and at the end
            bar.advance(task)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "training lora1: 3/8 (38%), 0:01:15 elapsed, ~0:02:05 left",
        "training lora1: 6/8 (75%), 0:02:30 elapsed, ~0:00:50 left",
        "training lora1: 8/8 (100%), 0:03:20 elapsed, done",
    ]


def test_short_work_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    bar = progress_module._Progress(console=Console(file=io.StringIO()), get_time=lambda: now[0])
    with bar:
        task = bar.add_task("eval", total=4)
        for _ in range(4):
            now[0] += 1.0
            bar.advance(task)
    assert capsys.readouterr().err == ""
