"""Files in and out: inputs decoded with errors naming the file and the line, outputs
written atomically (a reader sees the old file or the whole new one, never half)."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError


def read_text(path: str | Path, key: str = "file") -> str:
    """A UTF-8 text input; a read or decode failure is one ConfigError naming file and line.

    Python's own decode error counts bytes from the start of the file, which a user
    cannot find in an editor; the line and column of the bad byte can be.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(key, str(path), f"cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"line {line}, column {column}",
            f"byte {data[exc.start]:#04x}",
            "not UTF-8; save the file as UTF-8",
            source=str(path),
        ) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables, or one ConfigError (tomllib's message names line and column)."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("toml", str(path), f"not valid TOML: {exc}") from None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a result is an ordinary file of the user's umask
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
