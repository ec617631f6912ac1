"""What a report says around its tables, in every format: the caution at its top, the figures' titles."""

from __future__ import annotations

from typing import Any

TEST_CAUTION = (
    "Caution: this run used preset `test` (a tiny base, a handful of facts, one epoch): this preset measures "
    "nothing, its numbers only show that the pipeline runs. Use --preset default for results."
)


def caution(meta: dict[str, Any]) -> str | None:
    """The warning a report shows at its top, if any: a run at the `test` preset."""
    return TEST_CAUTION if meta.get("preset") == "test" else None


FIGURE_TITLES = {
    "bars.png": "Figure 1-like: accuracy per library and method, with 95% intervals",
    "figure2.png": "Figure 2-like: Setup 1 and Setup 2, Uniform vs Arrow, ours beside the paper's",
}
