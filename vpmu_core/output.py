"""Output files of a command: checked before a run starts, written atomically after it.

Why before: a run can take minutes, and an output path that cannot be written (a
directory, ``/proc``, a path under a regular file, the run's own config) is known
to fail before the first guest operation. The check proves writability the way the
writer will need it: by creating (and removing) a temporary file in the directory
the output goes to, or in its nearest existing ancestor when directories are still
to be made. Nothing else is created.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError
from .io import atomic_write_text

__all__ = ["check_output", "write_output"]


def check_output(
    path: str | Path, option: str = "--json", inputs: Iterable[str | Path | None] = ()
) -> Path:
    """``path`` if an output can be written there, else a ConfigError naming ``option``.

    ``inputs`` are the files the run reads (its config, a trace): writing over one
    of them would destroy what the result came from.
    """
    out = Path(path)
    shown = str(path)
    for given in inputs:
        if given is not None and _same_file(out, Path(given)):
            raise ConfigError(option, shown, f"is an input of this run ({given}); choose another")
    if out.is_dir():
        raise ConfigError(option, shown, "is a directory; give a file path")
    if out.name in ("", ".", ".."):
        raise ConfigError(option, shown, "names no file")
    parent = out.parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link: mkdir would fail on it
            raise ConfigError(option, shown, f"{parent} is a broken symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(option, shown, f"{parent} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".vpmu-probe.", dir=parent)
    except OSError as exc:
        raise ConfigError(option, shown, f"cannot write in {parent} ({exc.strerror})") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return out


def write_output(path: str | Path, text: str, option: str = "--json") -> None:
    """Write atomically; a failure (disk full, a path gone since the check) is one ConfigError."""
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise ConfigError(
            option, str(path), f"cannot be written ({exc.strerror or exc}); nothing was written"
        ) from None


def _same_file(a: Path, b: Path) -> bool:
    """The same file by identity (hard links, symlinks) when both exist, else by path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
