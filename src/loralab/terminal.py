"""Output a person reads: the stdout console and tables that fit the terminal without losing a character.

On a terminal, a table wider than the window drops its low-priority columns (named by the caller, in order)
and says so in its caption; what still does not fit is printed at its minimum width, so the terminal wraps
lines but no column is squeezed to nothing or cut with "…". Written to a file or a pipe, nothing is dropped,
wrapped or cut: the console is as wide as the widest line. Text that is not markup goes through `plain` so
square brackets (`T_e[sign=g]`, `pip install 'loralab[ray]'`) are printed as written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

FILE_WIDTH = 10_000
"""The console's width when stdout is not a terminal: wider than any line loralab prints."""


def stdout_console() -> Console:
    """The terminal's width on a terminal; else `FILE_WIDTH`, so a log file keeps every table whole."""
    return Console() if sys.stdout.isatty() else Console(width=FILE_WIDTH)


def plain(text: str) -> Text:
    """`text` as it is (rich markup off): brackets stay brackets."""
    return Text(text)


def min_width(console: Console, table: Table) -> int:
    """The narrowest the table can be drawn without cutting a no-wrap cell or a word: per column, its widest
    cell (no-wrap) or longest word, plus padding and rules."""
    options = console.options.update_width(FILE_WIDTH)  # measured unclamped by the window
    total = 0
    for col in table.columns:
        widest = 0
        for cell in [col.header, *col.cells]:
            renderable = console.render_str(cell) if isinstance(cell, str) else cell
            m = Measurement.get(console, options, renderable)
            widest = max(widest, m.maximum if col.no_wrap else m.minimum, col.min_width or 0)
        total += widest + 2 * table.padding[1]
    edges = len(table.columns) + 1 if table.box else 0
    return total + edges


def _without(table: Table, header: str) -> Table:
    """A copy of `table` without the column whose header is `header`."""
    keep = [i for i, c in enumerate(table.columns) if str(c.header) != header]
    out = Table(
        title=table.title,
        caption=table.caption,
        show_lines=table.show_lines,
        box=table.box,
        expand=table.expand,
    )
    for i in keep:
        col = table.columns[i]
        out.add_column(
            col.header,
            justify=col.justify,
            no_wrap=col.no_wrap,
            overflow=col.overflow,
            min_width=col.min_width,
        )
    columns = [list(c.cells) for c in table.columns]
    rows = [[cells[r] for cells in columns] for r in range(table.row_count)]
    for row in rows:
        out.add_row(*(row[i] for i in keep))
    return out


def fit_table(console: Console, table: Table, drop: Sequence[str] = ()) -> tuple[Table, int]:
    """(the table to print, the width to print it at): columns named in `drop` removed, in that order, while
    the table is wider than the console; the width is never below the table's minimum."""
    hidden = []
    for header in drop:
        if min_width(console, table) <= console.width:
            break
        if any(str(c.header) == header for c in table.columns):
            table = _without(table, header)
            hidden.append(header)
    if hidden:
        note = f"hidden to fit the terminal: {', '.join(hidden)} (a wider window or a file shows them)"
        caption = table.caption
        table.caption = Text.assemble(caption, f"; {note}") if caption else note
    return table, max(console.width, min_width(console, table))


def print_table(console: Console, table: Table, drop: Sequence[str] = ()) -> None:
    """Print `table` fitted to the console (`fit_table`)."""
    fitted, width = fit_table(console, table, drop)
    if width <= console.width:
        console.print(fitted)
        return
    saved = console.width
    console.width = width  # wider than the terminal: it wraps the lines, nothing is cut
    try:
        console.print(fitted)
    finally:
        console.width = saved
