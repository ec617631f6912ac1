"""The `loralab` console script (`loralab.cli:main`): one thin module per stage.

options.py   what every subcommand shares (console, --workdir/--base, --opt parsing, the error line)
main.py      the root app: registers each module's commands; `main()` turns mistakes into one line
data.py base.py experts.py combine.py run.py theory.py probe.py ls.py gsm.py sandbox.py diagnose.py
             one stage each
"""

from loralab.cli.main import app, main
from loralab.cli.options import console

__all__ = ["app", "console", "main"]
