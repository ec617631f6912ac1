"""The `loralab` console script: the root app, each stage's subcommands registered from its own module."""

from __future__ import annotations

import sys
import warnings

import typer

from loralab.cli.base import base_app
from loralab.cli.combine import combine_cmd, eval_cmd
from loralab.cli.data import data_app
from loralab.cli.diagnose import audit_cmd, diagnose_cmd, predict_cmd
from loralab.cli.experts import library_app, train_cmd
from loralab.cli.gsm import gsm_app
from loralab.cli.ls import ls_cmd
from loralab.cli.options import error_line
from loralab.cli.probe import probe_app
from loralab.cli.run import quickstart_cmd, report_cmd, run_cmd, status_cmd, validate_cmd
from loralab.cli.sandbox import sandbox_app
from loralab.cli.theory import theory_cmd
from loralab.errors import LoralabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="loralab: a laboratory for recycling LoRAs.",
)
# the order `loralab --help` lists them in: commands, then groups
for name, command in (
    ("diagnose", diagnose_cmd),
    ("audit", audit_cmd),
    ("predict", predict_cmd),
    ("ls", ls_cmd),
    ("combine", combine_cmd),
    ("train", train_cmd),
    ("eval", eval_cmd),
    ("quickstart", quickstart_cmd),
    ("report", report_cmd),
    ("validate", validate_cmd),
    ("run", run_cmd),
    ("status", status_cmd),
    ("theory", theory_cmd),
):
    app.command(name)(command)
for name, group in (
    ("data", data_app),
    ("base", base_app),
    ("library", library_app),
    ("sandbox", sandbox_app),
    ("gsm", gsm_app),
    ("probe", probe_app),
):
    app.add_typer(group, name=name)


def refuse_empty_arguments(args: list[str]) -> None:
    """An empty argument (`--workdir "$UNSET"`) would read as the current folder ('' is '.' as a path) or
    as nothing: one line naming the flag, before anything runs."""
    for i, arg in enumerate(args):
        if arg.startswith("--") and arg.endswith("=") and len(arg) > 3:
            raise LoralabError(f"{arg[:-1]}: an empty value (an unset shell variable?); give one")
        if arg == "":
            flag = args[i - 1] if i > 0 and args[i - 1].startswith("-") else None
            where = f"{flag}: an empty value" if flag else f"argument {i + 1}: empty"
            raise LoralabError(f"{where} (an unset shell variable?); give one")


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit status 2."""
    # a deprecation inside transformers/peft that a user of loralab can do nothing about
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    try:
        refuse_empty_arguments(sys.argv[1:])
        code = app(standalone_mode=False)
    except LoralabError as exc:
        error_line(str(exc))
        raise SystemExit(2) from None
    except typer.TyperException as exc:  # click's usage errors (typer vendors click): one line too
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:  # a group without a subcommand
            typer.echo(ctx.get_help())
        else:
            error_line(getattr(exc, "format_message", exc.__str__)())
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except OSError as exc:  # an unwritable path or a full disk that no check caught: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        error_line(f"{where}{exc.strerror or exc}")
        raise SystemExit(2) from None
    except (KeyboardInterrupt, typer.Abort):
        raise SystemExit(130) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)
