"""Writing a base model folder (the built-in bases, imported bases and the GSM arithmetic base share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loralab.artifacts import META, atomic_dir, provenance, write_json


def save_base(out: Path, model: Any, tokenizer: Any, meta: dict[str, Any]) -> None:
    """Write a base folder atomically: the model's weights, its tokenizer and `meta.json` (`meta` plus
    ``kind: base`` and provenance); a folder that exists is replaced only once the new one is complete."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its "Writing model shards" bar would break loralab's own progress lines
    with atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / META, {"kind": "base", **meta, **provenance()})
