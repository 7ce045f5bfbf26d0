"""vpmu plugin: all-in-one counters backed by host perf groups.

The design of the grouped-events RFC (one PMC backed by a group of host events,
``max_nr_events`` and a flex array of host events) as an extension any backend can
load with ``extensions = ["grouped"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vpmu_core.hookspecs import hookimpl

from .config import GroupedConfig
from .counters import GroupedPmc, field_values
from .extension import GroupedExtension

__version__ = "0.1.0"
__all__ = ["GroupedConfig", "GroupedExtension", "GroupedPmc", "field_values"]


@hookimpl
def vpmu_register_extensions(register: Callable[[type[Any]], None]) -> None:
    register(GroupedExtension)
