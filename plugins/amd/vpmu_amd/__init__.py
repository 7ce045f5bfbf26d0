"""vpmu plugin: the AMD core PMU (legacy K7, core extension, PerfMonV2) as KVM virtualizes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu_core.hookspecs import hookimpl

from .backend import AmdBackend
from .config import AmdConfig
from .guest import AmdGuestDriver
from .pmu import AmdPmu

__version__ = "0.1.0"
__all__ = ["AmdBackend", "AmdConfig", "AmdGuestDriver", "AmdPmu"]


@hookimpl
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    register(AmdBackend)


@hookimpl
def vpmu_register_guest_drivers(register: Callable[[type[Any]], None]) -> None:
    register(AmdGuestDriver)
