"""What every `loralab` subcommand shares: the console, common options (--workdir, --base, --scale and the
deprecated --preset), the LoRA flags generated from `ExpertConfig`, `--opt` parsing, the error line.

Subcommand modules import from here, never from the root app (`loralab.cli.main`), so the CLI has no
import cycle.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from loralab.errors import LoralabError
from loralab.experts.config import ExpertConfig
from loralab.terminal import FILE_WIDTH, stdout_console

# a terminal's tables fit its width; a pipe or log file gets every table whole (loralab/terminal.py)
console = stdout_console()

Workdir = Annotated[Path, typer.Option(help="where artifacts are written")]
Base = Annotated[
    str,
    typer.Option(
        help="base preset (default, test: built-in), imported base (smollm2) or local HF model folder"
    ),
]
Scale = Annotated[
    str | None,
    typer.Option(
        help="resize the spec: test, default, paper or cpu-real (loralab ls scales; default: as written)"
    ),
]


def preset_alias(new: str) -> Any:
    """`--preset`, the old name of `new` (base presets and scales were both "presets"), kept working."""
    return typer.Option("--preset", help=f"deprecated: the old name of {new}", show_default=False)


def renamed(new: str, value: Any, preset: Any, default: Any = None) -> Any:
    """The value of option or argument `new`, given by its name or by the deprecated `--preset` (both, with
    different values, is an error), else `default`."""
    if value is not None and preset is not None and value != preset:
        raise LoralabError(f"--preset {preset}: the old name of {new}, given as {value}; give one of them")
    value = preset if value is None else value
    return default if value is None else value


OPTION_SYNTAX = (
    "--opt KEY=VALUE (also a spec's options and Python keywords): numbers and true/false as written, none "
    "for an option whose default is None; a list option takes a,b or [a,b] or one value (weights=1: the "
    "same weight for every expert). Every value is checked against its range when parsed."
)

RESULT_DROP = ("CoT step 2 names C", "CoT step 1 names B", "prompting", "base", "library", "dataset")
"""The result table's columns a narrow terminal drops first (report/table.py's headers)."""


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values parsed as int, float, bool or left as strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise LoralabError(f"--opt {pair}: expected key=value")
        if key in out:
            raise LoralabError(f"--opt {pair}: {key} is given twice (give each option once)")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        out[key] = value
    return out


def expand_experts(paths: list[Path]) -> list[Path]:
    """Expert folders; a library folder (no adapter_config.json, but expert subfolders) stands for all of
    its experts. An expert named twice (also through a link or a library) is an error."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir() and not (p / "adapter_config.json").is_file():
            subs = sorted(q for q in p.iterdir() if (q / "adapter_config.json").is_file())
            if not subs:
                raise LoralabError(f"--expert {p}: neither an adapter folder nor a library of experts")
            out.extend(subs)
        else:
            out.append(p)
    from loralab.experts.library import refuse_repeats

    refuse_repeats(out, "--expert")
    return out


def positive(flag: str, value: int, most: int | None = None, why: str = "") -> None:
    """A count given on the command line must be at least 1 (and at most `most`, with `why` said)."""
    if value < 1:
        raise LoralabError(f"{flag} {value}: must be positive")
    if most is not None and value > most:
        raise LoralabError(f"{flag} {value}: must be at most {most:,}{f' ({why})' if why else ''}")


def error_line(message: str) -> None:
    """`error: MESSAGE` on stderr, one line, the message printed as written (no markup, no wrapping)."""
    line = " ".join(message.split())
    Console(stderr=True, width=FILE_WIDTH).print(
        Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True
    )


def lora_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with one option per `ExpertConfig` field in place of its `lora` parameter: the field's type,
    default and description are the flag's type, default and help (`--batch-size` for `batch_size`), and
    `command` receives them as one validated `lora: ExpertConfig`, so the CLI and a spec's `lora:` keys
    cannot disagree. A value out of a field's range is one line naming its flag."""
    fields = ExpertConfig.model_fields
    flags = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=Annotated[field.annotation, typer.Option(help=field.description)],
        )
        for name, field in fields.items()
    ]
    own = inspect.signature(command, eval_str=True).parameters
    if "lora" not in own:
        raise TypeError(f"{command.__name__}: lora_options needs a `lora: ExpertConfig` parameter")
    params: list[inspect.Parameter] = []
    for param in own.values():  # every parameter keyword-only, so the flags can stand where `lora` stood
        params.extend(flags if param.name == "lora" else [param.replace(kind=inspect.Parameter.KEYWORD_ONLY)])

    def with_lora_options(**kwargs: Any) -> None:
        values = {name: kwargs.pop(name) for name in fields}
        try:
            lora = ExpertConfig(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0])
            flag = "--" + name.replace("_", "-")
            raise LoralabError(f"{flag} {values[name]}: {err['msg']}") from exc
        command(lora=lora, **kwargs)

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(with_lora_options, attribute, getattr(command, attribute))
    with_lora_options.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return with_lora_options
