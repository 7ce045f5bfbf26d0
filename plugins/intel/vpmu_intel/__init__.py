"""vpmu plugin: the Intel architectural PMU (v1-v5) as KVM virtualizes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu_core.hookspecs import hookimpl

from .backend import IntelBackend
from .config import IntelConfig
from .guest import IntelGuestDriver
from .pmu import IntelPmu

__version__ = "0.1.0"
__all__ = ["IntelBackend", "IntelConfig", "IntelGuestDriver", "IntelPmu"]


@hookimpl
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    register(IntelBackend)


@hookimpl
def vpmu_register_guest_drivers(register: Callable[[type[Any]], None]) -> None:
    register(IntelGuestDriver)
