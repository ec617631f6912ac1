"""Fault injection for the crash-and-resume tests.

With `LORALAB_KILL_AT=POINT:N` in the environment, the process SIGKILLs itself the Nth time it passes
`checkpoint(POINT)`: no handler, no cleanup, exactly what `kill -9` does. Points: `train-step` (after an
optimiser step of expert training) and `eval-batch` (after a batch of generation). Unset, a checkpoint costs
one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_passed: dict[str, int] = {}


def checkpoint(point: str) -> None:
    spec = os.environ.get("LORALAB_KILL_AT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
