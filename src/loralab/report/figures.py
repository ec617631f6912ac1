"""The report's figures (matplotlib, Agg backend, PNG bytes), drawn from the same groups as its tables.

- `bars`: like the paper's Figure 1, one cluster of bars per row of the table (dataset, setup, graph...),
  one bar per library and method, with the 95% interval of the pooled counts as error bars, each seed's
  accuracy as a grey point on its bar (when the run has several seeds), confounded cells (a positive control
  they depend on fails) hatched and their tick labelled with a dagger, and the paper's number for the
  reference model as a black mark where the paper has that cell.
- `setups_figure`: like the paper's Figure 2, Setup 1 (B_R, evaluated on F12) and Setup 2 (B_F, evaluated
  on R12), Uniform and Arrow, ours beside the paper's (the paper's bars are Table 8's MLP columns: the
  reference model as a hatched bar, every model as a dot; seeds and confounded cells as in `bars`). Drawn
  when the run has both setups.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loralab.report.layouts import Group, Layout, eval_data, library_label, method_label
from loralab.report.paper import DEFAULT_MODEL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _subplots(width: float, height: float) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def _png(fig: Figure) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _err(g: Group) -> tuple[float, float]:
    ci = g.ci or (0.0, 0.0)
    acc = g.accuracy or 0.0
    return 100 * (acc - ci[0]), 100 * (ci[1] - acc)


def _seeds_and_confounded(ax: Axes, g: Group, x: float, width: float, first: dict[str, bool]) -> None:
    """Each seed's accuracy as a point on the bar (several seeds only); a hatch over a confounded bar."""
    values = g.seed_values()
    if len(values) > 1:
        offsets = [width * (i / (len(values) - 1) - 0.5) * 0.6 for i in range(len(values))]
        ax.plot(
            [x + o for o in offsets],
            [100 * v for v in values],
            "o",
            color="#444",
            ms=3.5,
            ls="",
            label="each seed" if first.pop("seed", False) else None,
        )
    if g.confounded:
        ax.bar(
            x,
            100 * (g.accuracy or 0.0),
            width,
            fill=False,
            hatch="xx",
            edgecolor="#b00",
            lw=0,
            label="† confounded (a control fails)" if first.pop("confounded", False) else None,
        )


def bars(layout: Layout, groups: Sequence[Group], title: str, model: str = DEFAULT_MODEL) -> bytes | None:
    """Figure 1-like grouped bars (None when no cell is done yet)."""
    done = [g for g in groups if g.done]
    if not done:
        return None
    clusters = list(dict.fromkeys(layout.x(g) for g in done))
    hues = list(dict.fromkeys(f"{library_label(g)} · {method_label(g)}" for g in done))
    width = 0.8 / len(hues)
    fig, ax = _subplots(max(6.0, 0.5 * len(clusters) * len(hues) + 2), 4.2)
    marked = False
    first = {"seed": True, "confounded": True}
    for h, hue in enumerate(hues):
        for c, cluster in enumerate(clusters):
            members = [
                g for g in done if layout.x(g) == cluster and f"{library_label(g)} · {method_label(g)}" == hue
            ]
            if not members:
                continue
            g = members[0]
            x = c - 0.4 + width * (h + 0.5)
            lo, hi = _err(g)
            ax.bar(
                x,
                100 * (g.accuracy or 0.0),
                width,
                color=COLOURS[h % len(COLOURS)],
                label=hue if c == 0 else None,
            )
            ax.errorbar(x, 100 * (g.accuracy or 0.0), yerr=[[lo], [hi]], color="black", capsize=2, lw=0.8)
            _seeds_and_confounded(ax, g, x, width, first)
            if g.paper is not None:
                _, value = g.paper.value(model)
                ax.plot(
                    x,
                    value,
                    marker="x",
                    color="black",
                    ms=7,
                    ls="",
                    label=None if marked else f"paper ({model})",
                )
                marked = True
    daggers = {layout.x(g) for g in done if g.confounded}
    ticks = [f"{c} †" if c in daggers else c for c in clusters]
    ax.set_xticks(range(len(clusters)), ticks, rotation=30 if len(clusters) > 6 else 0)
    ax.set_ylabel("two-hop accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _setup(g: Group) -> str:
    return str(eval_data(g).get("setup", ""))


def setups_figure(groups: Sequence[Group], model: str = DEFAULT_MODEL) -> bytes | None:
    """Figure 2-like bars, or None when the run lacks a done cell of setup-1 or of setup-2."""
    chosen = [g for g in groups if g.done and _setup(g) in ("setup-1", "setup-2")]
    chosen = [g for g in chosen if g.record.get("method") in ("uniform", "arrow")]
    mlp = [g for g in chosen if set(g.record.get("targets", {}).values()) == {"mlp"}]
    chosen = mlp or chosen
    if {_setup(g) for g in chosen} != {"setup-1", "setup-2"}:
        return None
    fig, ax = _subplots(7.5, 4.2)
    names = {"setup-1": "Setup 1 (B_R, on F12)", "setup-2": "Setup 2 (B_F, on R12)"}
    series = [("uniform", "Uniform"), ("arrow", "Arrow")]
    width = 0.2
    first = {"seed": True, "confounded": True}
    for c, setup in enumerate(names):
        for m, (method, label) in enumerate(series):
            found = [g for g in chosen if _setup(g) == setup and g.record.get("method") == method]
            if not found:
                continue
            g = found[0]
            x = c - 0.3 + m * 2 * width
            lo, hi = _err(g)
            colour = COLOURS[m]
            ax.bar(
                x, 100 * (g.accuracy or 0.0), width, color=colour, label=f"{label} (ours)" if c == 0 else None
            )
            ax.errorbar(x, 100 * (g.accuracy or 0.0), yerr=[[lo], [hi]], color="black", capsize=2, lw=0.8)
            _seeds_and_confounded(ax, g, x, width, first)
            if g.paper is None:
                continue
            _, value = g.paper.value(model)
            ax.bar(
                x + width,
                value,
                width,
                color="white",
                edgecolor=colour,
                hatch="//",
                label=f"{label} (paper, {model})" if c == 0 else None,
            )
            others = list(g.paper.values.values())
            ax.plot(
                [x + width] * len(others),
                others,
                "o",
                color="black",
                ms=3,
                label="paper, each model" if c == 0 and m == 0 else None,
            )
    ax.set_xticks(range(len(names)), list(names.values()))
    ax.set_ylabel("two-hop accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Figure 2: the bridge in both experts, real vs fake entities (MLP LoRAs)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
