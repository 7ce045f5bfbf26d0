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
from .hookspecs import hookimpl
from .machine import Machine
from .mechanisms import Cost, Mechanism
from .msr import MsrHandler
from .plugins import PluginManager, default_manager
from .report import RunResult
from .snapshot import VcpuSnapshot
from .strategy import Strategy
from .vcpu import Pmi, Vcpu
from .workloads.base import Workload

__version__ = "0.1.0"

logger.disable("vpmu_core")

__all__ = [
    "FIXED_BASE",
    "GP_BASE",
    "Backend",
    "Caps",
    "ConfigError",
    "Cost",
    "FilterError",
    "GuestFault",
    "Machine",
    "Mechanism",
    "MsrHandler",
    "PluginError",
    "PluginManager",
    "Pmc",
    "Pmi",
    "RunResult",
    "SnapshotError",
    "Strategy",
    "Vcpu",
    "VcpuSnapshot",
    "VendorPmu",
    "VpmuError",
    "Workload",
    "default_manager",
    "hookimpl",
    "load_config",
    "run",
]
