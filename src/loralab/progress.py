"""One progress-bar style for every long loop (rich). Attached to a terminal it draws a live bar; otherwise
(a log file, a pipe, a Ray worker) it writes a plain line to stderr at most every `LOG_EVERY` seconds, and
one when a task that ran longer than that finishes, so a long run in a log still shows where it is."""

from __future__ import annotations

import sys
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LOG_EVERY = 60.0
"""Seconds between two progress lines when not attached to a terminal."""


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Progress(Progress):
    """rich's Progress, plus periodic plain lines when the console is not a terminal."""

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._logged: dict[TaskID, float] = {}

    def _log(self, task_id: TaskID) -> None:
        if self.console.is_terminal:
            return
        task = self._tasks.get(task_id)
        if task is None or task.start_time is None:
            return
        now = self.get_time()
        last = self._logged.get(task_id, task.start_time)
        ran = now - task.start_time
        if not (now - last >= LOG_EVERY or (task.finished and ran >= LOG_EVERY and last != now)):
            return
        self._logged[task_id] = now
        total = f"/{task.total:.0f}" if task.total is not None else ""
        pct = f" ({100 * task.completed / task.total:.0f}%)" if task.total else ""
        left = "done" if task.finished else f"~{_clock(task.time_remaining)} left"
        print(
            f"{task.description}: {task.completed:.0f}{total}{pct}, {_clock(ran)} elapsed, {left}",
            file=sys.stderr,
            flush=True,
        )

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log(task_id)


def progress() -> Progress:
    return _Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
