"""The diagnostics as one self-contained HTML page: the verdict, the numbers as tables, and heatmaps
(layer x token coefficients, expert x expert overlaps) and strength curves as inline base64 PNGs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; border-bottom: 2px solid #4c72b0; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .9em; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; } th { background: #eef2f8; }
td:first-child { text-align: left; } img { max-width: 100%; border: 1px solid #ddd; }
.verdict li { font-weight: 600; } .note { color: #555; }
"""


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height))


def _img(fig: Figure, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    img = f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'
    return f"<figure>{img}<figcaption>{escape(alt)}</figcaption></figure>"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return escape(str(v))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def heatmap_png(
    values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str], title: str, vmax: float = 1.0
) -> str:
    fig = _figure(min(16, 2 + 0.18 * len(cols)), 1.2 + 0.35 * len(rows))
    ax = fig.add_subplot()
    im = ax.imshow(values, aspect="auto", vmin=0.0, vmax=vmax, cmap="viridis")
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    if len(cols) <= 80:
        ax.set_xticks(range(len(cols)), [c.replace("\n", "\\n") for c in cols], rotation=90, fontsize=6)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.02)
    return _img(fig, title)


def _routing(routing: dict[str, Any]) -> list[str]:
    if "skipped" in routing:
        return [f'<p class="note">{escape(routing["skipped"])}</p>']
    parts = []
    header = [
        "token class",
        "tokens",
        "entropy / ln E",
        "max coef.",
        "margin",
        "|x|",
        "owner coef.",
        "owner top-1",
    ]
    rows = [
        [
            c,
            s.get("tokens"),
            s.get("entropy_ratio"),
            s.get("max_coefficient"),
            s.get("margin"),
            s.get("x_norm"),
            s.get("owner_coefficient"),
            s.get("owner_top1"),
        ]
        for c, s in routing["by_class"].items()
    ]
    parts.append(table(header, rows))
    layer_rows = [
        [
            f"layer {lay}",
            s.get("tokens"),
            s.get("entropy_ratio"),
            s.get("max_coefficient"),
            s.get("margin"),
            s.get("x_norm"),
            s.get("owner_coefficient"),
            s.get("owner_top1"),
        ]
        for lay, s in routing["by_layer"].items()
    ]
    parts.append(table(["layer", *header[1:]], layer_rows))
    acc = routing.get("accuracy")
    if acc:
        parts.append(
            f"<p>Routing accuracy (mean owner coefficient): all tokens {_fmt(acc['all_tokens'])}, last prompt token + "
            f"generated {_fmt(acc['focus_tokens'])}, chance {_fmt(acc['chance'])}.</p>"
        )
    else:
        parts.append(
            f'<p class="note">{escape(routing.get("accuracy_skipped", "routing accuracy: no labels"))}</p>'
        )
    for hm in routing.get("heatmaps", []):
        parts.append(
            heatmap_png(
                hm["layer_token"],
                [f"layer {x}" for x in hm["layers"]],
                hm["tokens"],
                f"{hm['what']}, layer x token: {hm['prompt']}",
            )
        )
        parts.append(
            heatmap_png(
                hm["expert_token"],
                hm["experts"],
                hm["tokens"],
                "coefficient per expert x token (mean over modules)",
            )
        )
    return parts


def _overlaps(geometry: dict[str, Any]) -> list[str]:
    if "skipped" in geometry:
        return [f'<p class="note">{escape(geometry["skipped"])}</p>']
    names = geometry["experts"]
    n = len(names)
    parts = [
        table(
            ["expert", "|Delta|_F", "sigma1^2 / sum sigma^2 (mean)"],
            [[k, v["norm"], v["concentration_mean"]] for k, v in geometry["per_expert"].items()],
        )
    ]
    if n < 2:
        return parts
    rows = [
        [
            *p["experts"],
            p.get("prototype_abs_cos"),
            p.get("delta_cos"),
            p.get("input_angle_mean_deg"),
            p.get("output_angle_mean_deg"),
            p.get("sign_conflict"),
        ]
        for p in geometry["pairs"].values()
    ]
    parts.append(
        table(
            [
                "expert",
                "expert",
                "prototype |cos|",
                "delta cos",
                "input angle (deg)",
                "output angle (deg)",
                f"sign conflict @ {geometry['density']}",
            ],
            rows,
        )
    )
    for key, title, vmax in (
        ("prototype_abs_cos", "prototype |cos|", 1.0),
        ("delta_cos", "|delta cos|", 1.0),
        ("input_angle_mean", "mean input principal angle (rad)", 1.5708),
    ):
        grid = [[0.0] * n for _ in range(n)]
        for pk, p in geometry["pairs"].items():
            i, j = (int(t) for t in pk.split("-"))
            v = abs(p.get(key) or 0.0)
            grid[i][j] = grid[j][i] = v
        for i in range(n):
            grid[i][i] = 0.0 if key == "input_angle_mean" else 1.0
        parts.append(heatmap_png(grid, names, names, f"expert x expert: {title}", vmax))
    return parts


def margin_table(strength: dict[str, Any]) -> list[str]:
    """The curves' mean gold margins per lambda, with the delta's relative size (none for curves measured
    before margins were)."""
    curves = [c for c in strength.get("curves", []) if any(p.get("margin") is not None for p in c["points"])]
    if not curves:
        return []
    return [
        '<p class="note">Mean margin of the gold answer\'s first token (logits; teacher-forced on the reference '
        "answer; negative: the model prefers another token), and the delta's size |s B A| / |W|:</p>",
        table(
            ["expert", "n", "delta size", *(f"lambda {x}" for x in strength["lambdas"])],
            [
                [c["expert"], c.get("margin_n"), c.get("delta_size"), *(p.get("margin") for p in c["points"])]
                for c in curves
            ],
        ),
    ]


def _strength(strength: dict[str, Any]) -> list[str]:
    if "skipped" in strength:
        return [f'<p class="note">{escape(strength["skipped"])}</p>']
    curves = strength.get("curves", [])
    parts = []
    if curves:
        fig = _figure(5, 3.2)
        ax = fig.add_subplot()
        for c in curves:
            ax.plot(
                [p["lambda"] for p in c["points"]],
                [p["accuracy"] for p in c["points"]],
                marker="o",
                label=c["expert"],
            )
        ax.set_xlabel("lambda (scale of the expert's delta)")
        ax.set_ylabel("accuracy on its own probes")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
        parts.append(_img(fig, "strength curves"))
        parts.append(
            table(
                ["expert", *(f"lambda {x}" for x in strength["lambdas"])],
                [[c["expert"], *(p["accuracy"] for p in c["points"])] for c in curves],
            )
        )
        parts += margin_table(strength)
    if strength.get("no_probes"):
        parts.append(
            f'<p class="note">no probes of their own (no curve): {escape(", ".join(strength["no_probes"]))}</p>'
        )
    return parts


def _attribution(attr: dict[str, Any]) -> list[str]:
    if "skipped" in attr:
        return [f'<p class="note">{escape(attr["skipped"])}</p>']
    groups = list(attr["groups"])
    rows = [[name, *(e[g]["gold"] for g in groups)] for name, e in attr["experts"].items()]
    bridge = [[name, *(e[g]["bridge"] for g in groups)] for name, e in attr["experts"].items()]
    out = [
        f"<p>{escape(attr['unit'])}; reference log p of the gold tokens {_fmt(attr['reference']['gold'])}.</p>"
    ]
    out.append(table(["expert (gold)", *groups], rows))
    if any(v is not None for r in bridge for v in r[1:]):
        out.append(table(["expert (bridge B)", *groups], bridge))
    return out


def _answers(answers: dict[str, Any], names: Sequence[str]) -> list[str]:
    if "skipped" in answers:
        return [f'<p class="note">{escape(answers["skipped"])}</p>']
    from loralab.diagnose.answers import answer_header, answer_rows

    return [
        '<p class="note">Share of each owner\'s probes the combination answers with the gold, another of the '
        "owner's answers, one of each other expert's training answers (the columns named after the experts), "
        'or none of these; "(TASK)": questions no expert owns.</p>',
        table(answer_header(names), answer_rows(answers["by_owner"], names)),
    ]


def render_html(result: dict[str, Any]) -> str:
    """The page for one diagnostics result."""
    labels = result.get("verdict", {}).get("labels", [])
    over = ", ".join(result["experts"]) or "no experts"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>loralab diagnose: {escape(result["method"])}</title>',
        f"<style>{CSS}</style></head><body>",
        f"<h1>loralab diagnose: {escape(result['method'])} over {escape(over)}</h1>",
        "<h2>Verdict</h2>",
        '<ul class="verdict">' + "".join(f"<li>{escape(x)}</li>" for x in labels) + "</ul>"
        if labels
        else "<p>No label applies.</p>",
        *(f'<p class="note">{escape(n)}</p>' for n in result.get("notes", [])),
        "<h2>Routing</h2>",
        *_routing(result.get("routing", {"skipped": "-"})),
        "<h2>Geometry</h2>",
        *_overlaps(result.get("geometry", {"skipped": "-"})),
        "<h2>Strength</h2>",
        *_strength(result.get("strength", {"skipped": "-"})),
        "<h2>Attribution</h2>",
        *_attribution(result.get("attribution", {"skipped": "-"})),
        "<h2>Whose answers</h2>",
        *_answers(result.get("answers", {"skipped": "-"}), result["experts"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
