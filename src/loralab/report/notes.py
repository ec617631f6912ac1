"""What a report says around its tables, in every format: the caution at its top, the figures' titles."""

from __future__ import annotations

from typing import Any

TEST_CAUTION = (
    "Caution: this run used scale `test` (a tiny base, a handful of facts, one epoch): this scale measures "
    "nothing, its numbers only show that the pipeline runs. Use --scale default for results."
)


def scale_of(meta: dict[str, Any]) -> str | None:
    """The scale a run (or one of its sessions) used: `scale` in its meta.json, `preset` in run folders
    written before scales had their own name."""
    value = meta.get("scale", meta.get("preset"))
    return None if value is None else str(value)


def caution(meta: dict[str, Any]) -> str | None:
    """The warning a report shows at its top, if any: a run at the `test` scale."""
    return TEST_CAUTION if scale_of(meta) == "test" else None


FIGURE_TITLES = {
    "bars.png": "Figure 1-like: accuracy per library and method, with 95% intervals",
    "figure2.png": "Figure 2-like: Setup 1 and Setup 2, Uniform vs Arrow, ours beside the paper's",
}
