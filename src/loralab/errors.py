"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LoralabError(Exception):
    """A user-facing error: bad input, a missing file, an incompatible adapter. Message names the culprit."""


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """`; did you mean X?` for a near miss of `name` among `choices`, else an empty string."""
    options = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close and close[0] != str(name) else ""
