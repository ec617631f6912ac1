"""Theorem 2 as a runnable lab: the one-layer random-features transformer of the paper's Section 3 and
Appendix A.1, fact edits by minimum-norm LoRAs, their combinations, and the m -> infinity kernel prediction.

Public API (imported lazily: `loralab.theory.config` is all the CLI needs before it runs):
`TheoryConfig`, `run_lab`, `LabResult`, `EXPERIMENTS`, `save_figure`, `rich_table`, `markdown`, `to_json`,
`write_json`. See README.md in this folder.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TheoryConfig": "loralab.theory.config",
    "run_lab": "loralab.theory.lab",
    "LabResult": "loralab.theory.lab",
    "EXPERIMENTS": "loralab.theory.experiments",
    "save_figure": "loralab.theory.figure",
    "rich_table": "loralab.theory.report",
    "markdown": "loralab.theory.report",
    "to_json": "loralab.theory.report",
    "write_json": "loralab.theory.report",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'loralab.theory' has no attribute {name!r}")
