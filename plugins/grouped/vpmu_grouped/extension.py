"""The ``grouped`` extension component: joins the machine hooks like a backend does.

Hook order matters here: pluggy calls the last registered component first, so this
extension's ``vpmu_vcpu_counters`` runs before the backend has set ``vcpu.pmu``.
The counters are built there; everything needing the backend (event keys, the
global-register masks) is bound in ``vpmu_vcpu_msr_handlers``,
which runs after every component's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from vpmu_core.counters import Pmc
from vpmu_core.errors import GuestFault
from vpmu_core.events import catalog_of, config_catalog
from vpmu_core.hookspecs import hookimpl
from vpmu_core.msr import COUNTER, FIXED_CTRL, MsrHandler

from .config import GroupedConfig, check_against_backend
from .counters import CTRL_WRITABLE, GroupedPmc, generic_pmc

if TYPE_CHECKING:
    from vpmu_core.port import MachinePort, VcpuPort


class GroupedExtension:
    """All-in-one counters from the config."""

    name: ClassVar[str] = "grouped"
    Config: ClassVar[type[BaseModel]] = GroupedConfig

    def __init__(self, config: GroupedConfig, machine: MachinePort) -> None:
        self.config = config
        self.machine = machine
        backend = machine.backend
        self.indexes = config.indexes(backend.allinone_room(backend.config))

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """The conformance suite, run with the extension loaded: a generic counter per vendor."""
        fields = [
            {"event": "branches", "offset": 0, "width": 8},
            {"event": "branch-misses", "offset": 8, "width": 8},
            {"event": "cycles", "offset": 16, "width": 16},
        ]
        generic = {"name": "trio", "msr": 0x4000_1000, "ctrl_msr": 0x4000_1001, "fields": fields}
        return {
            "intel-generic": {
                "pmu": {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 4},
                "extensions": ["grouped"],
                "grouped": {"counters": [generic]},
            },
            "amd-generic": {
                "pmu": {"backend": "amd", "generation": "perfmon-v2"},
                "extensions": ["grouped"],
                "grouped": {"counters": [generic]},
            },
        }

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        backend = plugins.registry["backends"][config.pmu.backend]
        check_against_backend(config, backend, config_catalog(config, plugins))

    # ------------------------------------------------------------ machine hooks
    @hookimpl
    def vpmu_vcpu_counters(self, vcpu: VcpuPort) -> list[Pmc]:
        pmcs: list[GroupedPmc] = [
            generic_pmc(idx, c) for idx, c in zip(self.indexes, self.config.counters, strict=True)
        ]
        vcpu.ext[self.name] = pmcs
        for pmc in pmcs:
            vcpu.views += pmc.views
        return list(pmcs)

    @hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: VcpuPort) -> list[MsrHandler]:
        rows: list[MsrHandler] = []
        catalog = catalog_of(vcpu.pmu.events, vcpu.pmu.caps)
        pmcs: list[GroupedPmc] = vcpu.ext[self.name]
        for cfg, pmc in zip(self.config.counters, pmcs, strict=True):
            pmc.bind_keys([catalog.parse(f.event).key for f in cfg.fields])
            rows += self._generic_rows(vcpu, cfg.msr, cfg.ctrl_msr, pmc)
        # A vendor with a global status register (Intel) records a field wrap at the
        # PMC's index: let the guest clear it there.
        opener = getattr(vcpu.pmu, "open_global_bits", None)
        if opener is not None:
            opener(0, sum(1 << p.idx for p in pmcs))
        return rows

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: VcpuPort) -> None:
        readers: dict[int, Callable[[], int]] = {}
        pmcs: list[GroupedPmc] = vcpu.ext[self.name]
        for cfg, pmc in zip(self.config.counters, pmcs, strict=True):
            if cfg.rdpmc is not None:
                readers[cfg.rdpmc] = pmc.read
        if readers:
            vcpu.add_rdpmc(readers)

    @hookimpl
    def vpmu_save_state(self, vcpu: VcpuPort) -> dict[str, Any]:
        # The counters' values travel with the core's counter states; the controls here.
        return {"controls": [p.control for p in vcpu.ext[self.name]]}

    @hookimpl
    def vpmu_restore_state(self, vcpu: VcpuPort, states: dict[str, dict[str, Any]]) -> None:
        controls = [int(x) for x in states[self.name]["controls"]]
        pmcs: list[GroupedPmc] = vcpu.ext[self.name]
        if len(controls) != len(pmcs):
            raise ValueError(f"{len(controls)} grouped controls for {len(pmcs)} grouped counters")
        for pmc, ctrl in zip(pmcs, controls, strict=True):
            pmc.set_control(ctrl)
            vcpu.request_reprogram(pmc)

    # -------------------------------------------------------------- builders
    def _generic_rows(self, vcpu: VcpuPort, msr: int, ctrl_msr: int, pmc: GroupedPmc) -> list[Any]:
        own = self.name

        def write_value(value: int) -> None:
            if value & ~pmc.mask:
                raise GuestFault(13, f"{value:#x} exceeds the {pmc.width}-bit counter {pmc.name}")
            pmc.value = value

        def write_ctrl(value: int) -> None:
            if value & ~CTRL_WRITABLE:
                bad = value & ~CTRL_WRITABLE
                raise GuestFault(13, f"{pmc.name} control reserved bits {bad:#x}")
            if value != pmc.control:
                pmc.set_control(value)
                vcpu.request_reprogram(pmc)

        return [
            MsrHandler(
                msr, pmc.name.upper(), COUNTER, pmc.read, write_value, counter=pmc.idx, owner=own
            ),
            MsrHandler(
                ctrl_msr,
                f"{pmc.name.upper()}_CTRL",
                FIXED_CTRL,
                lambda: pmc.control,
                write_ctrl,
                counter=pmc.idx,
                owner=own,
            ),
        ]
