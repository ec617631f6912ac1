"""Artifacts on disk: atomic writes, provenance (`meta.json`), identity hashes and cache folders."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from loralab.errors import LoralabError

META = "meta.json"


def cache_dir() -> Path:
    """Where built base models live: `$LORALAB_CACHE`, default `~/.cache/loralab`."""
    root = os.environ.get("LORALAB_CACHE") or str(Path.home() / ".cache" / "loralab")
    return Path(root).expanduser()


def config_hash(obj: Any, length: int = 12) -> str:
    """A stable short hash of a JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def provenance() -> dict[str, Any]:
    """Versions, git revision and host facts that go into every `meta.json`."""
    import peft
    import torch
    import transformers

    from loralab import __version__

    return {
        "loralab": __version__,
        "git_revision": _git_revision(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# The process's umask, read once at import (reading it means setting it): the temp files and folders that
# atomic writes rename into place are created private (0600, 0700), and get the modes a plain write would
UMASK = os.umask(0o022)
os.umask(UMASK)


def shareable(path: Path) -> None:
    """Give `path` (and, for a folder, all it holds) the modes a plain `open`/`mkdir` would have given it."""
    path.chmod((0o777 if path.is_dir() else 0o666) & ~UMASK)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o777 & ~UMASK)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~UMASK)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    shareable(Path(tmp))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing, unreadable or corrupt file is a `LoralabError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LoralabError(f"{path}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise LoralabError(f"{path}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise LoralabError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_json_object(path: Path) -> dict[str, Any]:
    """`read_json` of a file that must hold a JSON object (a run's plan.json, meta.json): anything else is a
    `LoralabError` naming the file."""
    found = read_json(path)
    if not isinstance(found, dict):
        raise LoralabError(f"{path}: not a JSON object (damaged? it is written by loralab)")
    return found


def check_replaceable(out: Path, flag: str, outputs: Collection[str], what: str) -> None:
    """Fail unless folder `out` is absent, empty, or holds only `outputs` (an earlier `what`): such a folder
    is replaced whole, so pointing it at a workdir, a library or a model would delete them."""
    out = Path(out)
    if not out.is_dir():
        return
    other = sorted({p.name for p in out.iterdir()} - set(outputs))
    if other:
        raise LoralabError(
            f"{flag} {out}: holds other files than {what} ({', '.join(other[:3])}); it would be replaced "
            "whole, so give a new or empty folder"
        )


def check_output(
    path: Path,
    flag: str,
    inputs: Sequence[Path] = (),
    new: bool = False,
    file: bool = False,
    suffix: str | None = None,
) -> None:
    """Fail before any work if a command could not write `path` (a folder, or a `file`): a path where a file
    stands and a folder is due (or the reverse), a parent that is a file or cannot be written, a path inside
    one of the `inputs` or holding one (an overwrite would delete it), a `file` inside a folder loralab wrote whole
    (a run, expert, dataset or report: it would replace or pollute what that folder holds), or, with `new`, one
    that exists.
    A `suffix` (".json") is the file name's required ending, so that an existing file of another kind (a
    dataset, a note) is never overwritten by this output. Nothing is created; errors name the flag:
    ``--out PATH: why``."""
    path = Path(path)
    where = f"{flag} {path}"
    if suffix is not None and path.suffix.lower() != suffix:
        raise LoralabError(f"{where}: name a {suffix} file (this writes {suffix[1:].upper()})")
    if path.exists() or path.is_symlink():
        if file and path.is_dir():
            raise LoralabError(f"{where}: is a folder, a file is written here")
        if not file and not path.is_dir():
            raise LoralabError(f"{where}: is a file, a folder is written here")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise LoralabError(f"{where}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".loralab-write-check-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LoralabError(f"{where}: cannot write in {parent} ({exc.strerror or exc})") from None
    target = path.resolve()
    for inp in inputs:
        source = Path(inp).resolve()
        if target == source or target.is_relative_to(source):
            raise LoralabError(f"{where}: inside the input {inp}; write it somewhere else")
        if source.is_relative_to(target):
            raise LoralabError(f"{where}: holds the input {inp}; write it somewhere else")
    if file:  # a file written into a run, expert, dataset or report would replace or pollute what it holds
        for folder in target.parents:
            if _written_whole(folder):
                raise LoralabError(
                    f"{where}: inside {folder}, a folder loralab wrote; write it somewhere else"
                )
    if new and path.exists():
        raise LoralabError(f"{where}: already exists (pass --overwrite to replace it)")


MARKERS = frozenset(
    {
        META,
        "combination.json",
        "report.json",
        "report.md",
        "diagnostics.json",
        "nothing-to-diagnose.json",
        "audit.json",
    }
)
"""Files at the top of every folder loralab writes whole (experts, datasets, bases, recipes, reports,
diagnoses, audits): a folder with none of them is not one, and is never replaced."""


def _written_whole(folder: Path) -> bool:
    """Whether `folder` is one loralab wrote whole: a run (plan.json), or a marker at its top; a meta.json,
    a name common elsewhere, counts only when it is loralab's (it names the loralab version)."""
    if (folder / "plan.json").is_file() or any((folder / m).is_file() for m in MARKERS - {META, "report.md"}):
        return True
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "loralab" in meta


def check_loralab_folder(folder: Path) -> None:
    """Fail unless replacing `folder` whole can only destroy what loralab wrote: it is empty, holds one of
    `MARKERS` at its top or is a base in loralab's cache, and it does not hold the current working folder."""
    folder = Path(folder)
    here = Path.cwd().resolve()
    target = folder.resolve()
    if here == target or here.is_relative_to(target):
        raise LoralabError(f"{folder}: holds the current folder; replacing it would delete it")
    if target.parent == (cache_dir() / "bases").resolve():
        return  # a base in loralab's own cache, however damaged (a build killed before its meta.json)
    if folder.is_dir():
        names = {p.name for p in folder.iterdir()}
        if names and not names & MARKERS:
            shown = ", ".join(sorted(names)[:3])
            raise LoralabError(
                f"{folder}: not a folder loralab wrote (it holds {shown}); --overwrite replaces only those, "
                "so give a new or empty folder"
            )


@contextlib.contextmanager
def atomic_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside `final`; rename it to `final` only if the block finishes.

    A killed or failed run leaves at most a hidden `.tmp-*` folder, never a `final` that looks complete.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise LoralabError(f"{final}: already exists (pass --overwrite to replace it)")
    if final.exists():
        check_loralab_folder(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shareable(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
