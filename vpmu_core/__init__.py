"""vpmu: a pluggable, bit-exact model of x86 virtual PMUs and what virtualizing them costs.

The public API::

    import vpmu_core as vpmu
    machine = vpmu.Machine.from_toml("configs/intel-kvm.toml")
    cpu = machine.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)
    result = vpmu.run("configs/intel-kvm.toml")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
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

# Why lazy (PEP 562): ``vpmu --help`` and a small ``vpmu run`` should start in well
# under a second; importing the whole API (pydantic models, costs, plugins) for a
# command that needs none of it cost most of that. A name is imported on first use.
_LAZY: dict[str, str] = {
    "Backend": "backend",
    "Caps": "backend",
    "ConfigError": "errors",
    "Cost": "mechanisms",
    "CounterAllocator": "port",
    "DirectPmiPath": "strategy",
    "FIXED_BASE": "counters",
    "FilterError": "errors",
    "GP_BASE": "counters",
    "GuestCpu": "port",
    "GuestDriver": "guest",
    "GuestFault": "errors",
    "HostPort": "port",
    "InjectedPmiPath": "strategies.common",
    "Machine": "machine",
    "MachinePort": "port",
    "Mechanism": "mechanisms",
    "MsrHandler": "msr",
    "PluginError": "errors",
    "PluginManager": "plugins",
    "Pmc": "counters",
    "Pmi": "vcpu",
    "PmiClient": "guest",
    "PmiPath": "port",
    "PmuState": "port",
    "RunResult": "report",
    "SnapshotError": "errors",
    "Strategy": "strategy",
    "Vcpu": "vcpu",
    "VcpuPort": "port",
    "VcpuSnapshot": "snapshot",
    "VendorPmu": "backend",
    "VpmuError": "errors",
    "Workload": "workloads.base",
    "__version__": "version",
    "default_manager": "plugins",
    "hookimpl": "hookspecs",
    "load_config": "api",
    "msr": "",
    "run": "api",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'vpmu_core' has no attribute {name!r}")
    module = importlib.import_module(f".{mod}" if mod else f".{name}", __name__)
    value = module if not mod else getattr(module, name)
    globals()[name] = value
    return value


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
