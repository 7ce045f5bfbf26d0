"""The ``vpmu`` command line (typer + rich), one module per command.

Errors a user can fix (a config key, a plugin name, a snapshot) are printed as one
line on stderr with exit status 2; anything else is a bug and keeps its traceback.
Importing this package registers every command on :data:`app` (``--help`` lists them
in the order of the imports below); each command imports what it runs only when it
runs, so ``vpmu --help`` stays fast.
"""

from __future__ import annotations

# isort: off
from .common import app
from . import run, compare, sweep, reproduce, info

# isort: on

__all__ = ["app", "compare", "info", "main", "reproduce", "run", "sweep"]


def main() -> None:
    app()
