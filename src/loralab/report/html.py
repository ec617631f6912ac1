"""The report as one self-contained HTML page: inline CSS, figures as base64 PNG data URIs, no external
resource of any kind (it opens offline, from a mail attachment, or from a CI artifact)."""

from __future__ import annotations

import base64
from html import escape
from typing import TYPE_CHECKING, Any

from loralab.report.controls import summary as controls_summary
from loralab.report.notes import FIGURE_TITLES, caution, scale_of
from loralab.report.paper import source

if TYPE_CHECKING:
    from loralab.report.layouts import ReportTable
    from loralab.report.run import RunReport

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #4c72b0; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #eef2f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.paper { color: #555; background: #fafafa; text-align: right; }
td.pending { color: #b00; }
td.pass { color: #176b2c; font-weight: 600; } td.fail { color: #b00; font-weight: 600; }
td.unmeasured { color: #777; } td.confounded { background: #fdf3e1; }
caption { caption-side: bottom; text-align: left; color: #555; font-size: .85em; padding-top: .4em; }
.caution { padding: .6em .8em; border-radius: 4px; background: #fff3cd; border: 2px solid #d39e00;
           font-weight: 600; }
.progress { padding: .5em .8em; border-radius: 4px; background: #e8f4ea; }
.progress.partial { background: #fdecea; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dt { font-weight: 600; } dd { margin: 0; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .85em; }
img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
"""


def _table(table: ReportTable) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    rows = []
    for line in table.body:
        cells = []
        for i, (header, text) in enumerate(zip(table.header, line, strict=True)):
            kind = "" if i < table.row_dims else "paper" if header.endswith(": paper") else "num"
            if text == "pending":
                kind = "pending"
            elif text in ("pass", "fail") or text.startswith("not measured") or text.startswith("too few"):
                kind = "pass" if text == "pass" else "fail" if text == "fail" else "unmeasured"
            elif text.endswith(" †"):
                kind += " confounded"
            cls = f' class="{kind}"' if kind else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<h2>{escape(table.title)}</h2>\n<table>\n<caption>{escape(table.caption)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def _figure(name: str, png: bytes, title: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(title)} ({escape(name)})</figcaption></figure>"
    )


def _definitions(items: list[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items) + "</dl>"


def _sessions(sessions: list[dict[str, Any]]) -> str:
    if not sessions:
        return "<p>No session recorded.</p>"
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{escape(str(v or ''))}</td>" for v in (s.get("started"), s.get("finished")))
        + "".join(f"<td>{escape(str(v or ''))}</td>" for v in (scale_of(s), s.get("executor")))
        + f'<td class="num">{escape(str(s.get("seconds", "interrupted or running")))}</td></tr>'
        for s in sessions
    )
    head = "".join(f"<th>{h}</th>" for h in ("started", "finished", "scale", "executor", "seconds"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _rate(rate: Any) -> str:
    if not isinstance(rate, dict) or not rate.get("n"):
        return "-"
    return f"{rate.get('accuracy', 0):.2f} ({rate.get('correct')}/{rate.get('n')})"


def _familiarity(familiarity: dict[str, Any]) -> str:
    """The bases' familiarity probes (`loralab probe familiarity`) as one table: a row per base and pool."""
    head = ("base", "pool", "names", "tokens/name", "log p/token", "public facts", "corpus facts")
    rows = []
    for base, summary in familiarity.items():
        pools = summary.get("pools") if isinstance(summary, dict) else None
        if not isinstance(pools, dict):
            rows.append(f"<tr><td>{escape(str(base))}</td>" + '<td colspan="6">no probe</td></tr>')
            continue
        for pool, entry in pools.items():
            e = entry if isinstance(entry, dict) else {}
            cells = [
                str(e.get("names", "-")),
                _number(e.get("tokens_per_name")),
                _number(e.get("logprob_per_token")),
                _rate(e.get("public_facts")),
                _rate(e.get("corpus_facts")),
            ]
            rows.append(
                f"<tr><td>{escape(str(base))}</td><td>{escape(str(pool))}</td>"
                + "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
                + "</tr>"
            )
    header = "".join(f"<th>{h}</th>" for h in head)
    caption = (
        "log p/token: mean log-probability per token of the pool's names opening a document; facts: accuracy "
        "(correct/n) on true public facts and, for a built-in base, on its own corpus facts"
    )
    return (
        f"<table><caption>{escape(caption)}</caption><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def render_html(report: RunReport) -> str:
    """The whole page as a string."""

    meta = report.meta
    status = "progress" if report.complete else "progress partial"
    run_items: list[tuple[str, Any]] = [
        ("run", report.run),
        ("experiment", report.experiment),
        ("scale", scale_of(meta) or "-"),
        ("run folder", report.folder),
        ("workdir", report.workdir),
        ("wall time", report.wall_time()),
        ("paper numbers", f"{source()}; reference model {report.model}"),
    ]
    provenance: list[tuple[str, Any]] = [
        (k, meta[k])
        for k in ("loralab", "git_revision", "torch", "transformers", "peft", "python", "created")
        if k in meta
    ]
    familiarity = {b: f for b, f in (meta.get("familiarity") or {}).items() if f is not None}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>loralab report: {escape(report.run)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>loralab report: {escape(report.run)}</h1>",
        *([f'<p class="caution">{escape(w)}</p>'] if (w := caution(meta)) else []),
        *([_table(report.controls)] if report.control_results else []),
        f"<p>{escape(controls_summary(report.control_results))}</p>",
        f'<p class="{status}">{escape(report.progress())}</p>',
        *(_table(t) for t in report.tables),
        *(_figure(name, png, FIGURE_TITLES.get(name, name)) for name, png in report.figures.items()),
        "<h2>Run</h2>",
        _definitions(run_items),
        "<h2>Sessions</h2>",
        _sessions(meta.get("sessions", [])),
        "<h2>Provenance</h2>",
        _definitions(provenance) if provenance else "<p>No meta.json in the run folder.</p>",
    ]
    if familiarity:
        parts += [
            "<h2>Familiarity of the base model(s)</h2>",
            _familiarity(familiarity),
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
