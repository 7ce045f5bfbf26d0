"""vpmu's own plugin module: the strategies and workloads that ship in the core.

Registered through the ``vpmu`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hookspecs import hookimpl
from .strategies.emulated import Emulated
from .strategies.fastpath import Fastpath
from .strategies.legacy import EmulatedLegacy
from .strategies.mediated import Mediated
from .strategies.register import Register
from .workloads.counting import Counting
from .workloads.perf import PerfRecord, PerfStat
from .workloads.scripts import Polling, Sampling, Toggle
from .workloads.trace import Trace

__version__ = "0.1.0"


@hookimpl
def vpmu_register_strategies(register: Callable[[type[Any]], None]) -> None:
    for strategy in (EmulatedLegacy, Emulated, Register, Fastpath, Mediated):
        register(strategy)


@hookimpl
def vpmu_register_workloads(register: Callable[[type[Any]], None]) -> None:
    for workload in (Counting, Toggle, Sampling, Polling, PerfStat, PerfRecord, Trace):
        register(workload)
