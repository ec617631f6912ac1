"""Fault injection for the crash-and-resume tests.

With `LORALAB_KILL_AT=POINT:N` in the environment, the process SIGKILLs itself the Nth time it passes
`checkpoint(POINT)`: no handler, no cleanup, exactly what `kill -9` does. With `LORALAB_STALL_AT=POINT:N`
it sleeps there instead, for an hour, after creating the file `LORALAB_STALL_FILE` names (if set): a job
that is still running when the test interrupts the run. Points:
`train-step` (after an optimiser step of expert training) and `eval-batch` (after a batch of generation).
Unset, a checkpoint costs two dictionary lookups.
"""

from __future__ import annotations

import os
import signal
import time

_passed: dict[str, int] = {}


def checkpoint(point: str) -> None:
    kill, stall = os.environ.get("LORALAB_KILL_AT"), os.environ.get("LORALAB_STALL_AT")
    if not (kill or stall):
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _reached(kill, point):
        os.kill(os.getpid(), signal.SIGKILL)
    if _reached(stall, point):
        flag = os.environ.get("LORALAB_STALL_FILE")
        if flag:
            open(flag, "w").close()
        time.sleep(3600)


def _reached(spec: str | None, point: str) -> bool:
    name, _, count = (spec or "").partition(":")
    return name == point and _passed[point] == int(count or 1)
