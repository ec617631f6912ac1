"""loralab: a laboratory for recycling LoRAs.

Public API (imported lazily, so `import loralab` and the CLI start fast):
`combine`, `METHODS`, `train_expert`, `ExpertConfig`, `load_expert`, `evaluate`, `load_base`,
`build_twohop`, `build_setup`, `SETUPS`, `build_graph`, `validate_dataset`, `quickstart`, `LoralabError`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "combine": "loralab.combination",
    "METHODS": "loralab.combination",
    "train_expert": "loralab.experts.train",
    "ExpertConfig": "loralab.experts.config",
    "load_expert": "loralab.experts.library",
    "evaluate": "loralab.evaluation",
    "load_base": "loralab.models.load",
    "build_twohop": "loralab.worlds.twohop",
    "build_setup": "loralab.worlds.setups",
    "SETUPS": "loralab.worlds.setups",
    "build_graph": "loralab.worlds.graph",
    "validate_dataset": "loralab.worlds.validate",
    "quickstart": "loralab.experiments.quickstart",
    "LoralabError": "loralab.errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'loralab' has no attribute {name!r}")
