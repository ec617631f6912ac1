"""Mechanism diagnostics: why a combination of LoRA experts composes or not (routing, geometry, strength,
attribution, verdict), for one combination (`diagnose`) or a whole library (`audit`). See README.md.

Public names (imported lazily, so the CLI starts fast): `diagnose`, `write_diagnostics`, `diagnose_cell`,
`audit`, `write_audit`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "diagnose": "loralab.diagnose.panel",
    "write_diagnostics": "loralab.diagnose.panel",
    "diagnose_cell": "loralab.diagnose.cell",
    "audit": "loralab.diagnose.audit",
    "write_audit": "loralab.diagnose.audit",
}
__all__ = [*_EXPORTS, "CHEAP", "DIAGNOSTICS", "PARTS", "VERSION"]
PARTS = ("routing", "geometry", "strength", "attribution", "answers")
"""The sections of diagnostics.json that measure something (plus `verdict`, computed from them)."""
DIAGNOSTICS = "diagnostics.json"
"""The file each diagnosis writes (with diagnostics.html beside it)."""
VERSION = 3
"""What a run cell's diagnostics.json was measured with (its `version`; none before 2). Raised when a change
alters what is measured, so that `loralab run` redoes the cached diagnostics of cells evaluated before it.
2: a probe's owner is also read from the experts' training facts when their tasks tie (the bridge setups).
3: the `answers` section (whose answers the combination gives; part of the cheap diagnostics)."""
CHEAP = ("routing", "geometry", "answers")
"""What `loralab run` measures per cell by default (no extra generation: the cell's own outputs are traced
and sorted)."""


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'loralab.diagnose' has no attribute {name!r}")
