"""vpmu: a pluggable, bit-exact model of x86 virtual PMUs and what virtualizing them costs.

The public API::

    import vpmu_core as vpmu
    machine = vpmu.Machine.from_toml("configs/intel-kvm.toml")
    cpu = machine.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)
    result = vpmu.run("configs/intel-kvm.toml")
"""

from __future__ import annotations

from loguru import logger

from . import msr
from .api import load_config, run
from .backend import Backend, Caps, VendorPmu
from .counters import FIXED_BASE, GP_BASE, Pmc
from .errors import (
    ConfigError,
    FilterError,
    GuestFault,
    PluginError,
    SnapshotError,
    VpmuError,
)
from .guest import GuestDriver, PmiClient
from .hookspecs import hookimpl
from .machine import Machine
from .mechanisms import Cost, Mechanism
from .msr import MsrHandler
from .plugins import PluginManager, default_manager
from .port import (
    CounterAllocator,
    GuestCpu,
    HostPort,
    MachinePort,
    PmiPath,
    PmuState,
    VcpuPort,
)
from .report import RunResult
from .snapshot import VcpuSnapshot
from .strategies.common import InjectedPmiPath
from .strategy import DirectPmiPath, Strategy
from .vcpu import Pmi, Vcpu
from .version import __version__
from .workloads.base import Workload

logger.disable("vpmu_core")

__all__ = [
    "FIXED_BASE",
    "GP_BASE",
    "Backend",
    "Caps",
    "ConfigError",
    "Cost",
    "CounterAllocator",
    "DirectPmiPath",
    "FilterError",
    "GuestCpu",
    "GuestDriver",
    "GuestFault",
    "HostPort",
    "InjectedPmiPath",
    "Machine",
    "MachinePort",
    "Mechanism",
    "MsrHandler",
    "PluginError",
    "PluginManager",
    "Pmc",
    "Pmi",
    "PmiClient",
    "PmiPath",
    "PmuState",
    "RunResult",
    "SnapshotError",
    "Strategy",
    "Vcpu",
    "VcpuPort",
    "VcpuSnapshot",
    "VendorPmu",
    "VpmuError",
    "Workload",
    "__version__",
    "default_manager",
    "hookimpl",
    "load_config",
    "msr",
    "run",
]
