"""`loralab sandbox run FILE.py`: run a file under the sandbox's limits, so users can check them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from loralab.errors import LoralabError

sandbox_app = typer.Typer(
    no_args_is_help=True,
    help="Run Python code under the sandbox's limits.\n\nExample: loralab sandbox run snippet.py",
)


@sandbox_app.command("run")
def run_cmd(
    file: Annotated[Path, typer.Argument(help="a Python file to run")],
    timeout: Annotated[float, typer.Option(help="wall-clock limit in seconds")] = 5.0,
    memory_mb: Annotated[int, typer.Option(help="address-space limit in MiB (RLIMIT_AS)")] = 512,
    cpu_s: Annotated[int, typer.Option(help="CPU-time limit in whole seconds (RLIMIT_CPU)")] = 2,
    output_kb: Annotated[int, typer.Option(help="KiB kept of stdout and of stderr; more stops the run")] = 64,
    site_packages: Annotated[
        bool, typer.Option(help="let the code import installed packages (read only), e.g. sympy")
    ] = False,
) -> None:
    """Run FILE in the sandbox that tool-integrated reasoning uses (separate process, rlimits, scrubbed
    environment, private temporary directory, namespaces where available, audit hook; docs/sandbox.md).
    Prints the program's stdout and stderr, then one line saying how it ended (finished, failed with its own
    non-zero exit, or stopped by a limit, named); the exit status is 1 unless it finished.

    Example: loralab sandbox run snippet.py --timeout 2 --memory-mb 256 --cpu-s 1
    """
    from loralab.gsm.sandbox import Limits, run_code

    if file.is_dir():
        raise LoralabError(f"{file}: a folder, not a Python file")
    if not file.is_file():
        raise LoralabError(f"{file}: {'not a regular file' if file.exists() else 'no such file'}")
    # upper bounds: a sandbox is for snippets; inf or NaN would wait forever or crash the limit setting
    for flag, value, most in (
        ("--timeout", timeout, 3600),
        ("--memory-mb", memory_mb, 1 << 20),
        ("--cpu-s", cpu_s, 3600),
        ("--output-kb", output_kb, 1 << 16),  # 64 MiB of each stream, held in memory
    ):
        if not value > 0 or not value <= most:  # NaN fails both
            raise LoralabError(f"{flag} {value}: must be positive and at most {most}")
    if memory_mb < 32:
        raise LoralabError(f"--memory-mb {memory_mb}: a Python interpreter needs at least 32")
    try:
        code = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoralabError(f"{file}: {exc}") from exc
    limits = Limits(
        timeout_s=timeout,
        cpu_s=cpu_s,
        memory_mb=memory_mb,
        output_bytes=output_kb * 1024,
        site_packages=site_packages,
    )
    result = run_code(code, limits)
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    if result.truncated:
        sys.stderr.write(f"\n[output cut at {output_kb} KiB]\n")
    sys.stderr.write(f"sandbox: {result.summary()}\n")
    if not result.ok:
        raise typer.Exit(1)
