"""The ``grouped`` extension component: joins the machine hooks like a backend does.

Hook order matters here: pluggy calls the last registered component first, so this
extension's ``vpmu_vcpu_counters`` runs before the backend has set ``vcpu.pmu``.
The counters are built there; everything needing the backend (event keys, fixed
counter 3, the global-register masks) is bound in ``vpmu_vcpu_msr_handlers``,
which runs after every component's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from vpmu_core.counters import EventKey, Pmc
from vpmu_core.errors import GuestFault
from vpmu_core.hookspecs import hookimpl
from vpmu_core.msr import COUNTER, FIXED_CTRL, METRICS, MsrHandler

from .config import METRIC_BASE, GroupedConfig, check_against_backend
from .counters import CTRL_WRITABLE, GroupedPmc, generic_pmc
from .topdown import (
    EN_PERF_METRICS,
    L1_EVENTS,
    L2_EVENTS,
    PERF_METRICS,
    RDPMC_METRICS,
    SLOTS_KEY,
    TopdownMetrics,
)

if TYPE_CHECKING:
    from vpmu_core.port import MachinePort, VcpuPort

FIXED3 = 3


class GroupedExtension:
    """All-in-one counters from the config, and Intel topdown when asked for."""

    name: ClassVar[str] = "grouped"
    Config: ClassVar[type[BaseModel]] = GroupedConfig

    def __init__(self, config: GroupedConfig, machine: MachinePort) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """The conformance suite, run with the extension loaded: topdown and a generic counter."""
        spr = {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 4}
        fields = [
            {"event": "branches", "offset": 0, "width": 8},
            {"event": "branch-misses", "offset": 8, "width": 8},
            {"event": "cycles", "offset": 16, "width": 16},
        ]
        generic = {"name": "trio", "msr": 0x4000_1000, "ctrl_msr": 0x4000_1001, "fields": fields}
        return {
            "intel-topdown": {
                "pmu": spr,
                "extensions": ["grouped"],
                "grouped": {"topdown": {"metrics": 8}},
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
        check_against_backend(config, backend.event_names())

    # ------------------------------------------------------------ machine hooks
    @hookimpl
    def vpmu_vcpu_counters(self, vcpu: VcpuPort) -> list[Pmc]:
        pmcs: list[GroupedPmc] = [
            generic_pmc(self.config.index_of(i), c) for i, c in enumerate(self.config.counters)
        ]
        td = self.config.topdown
        if td is not None:
            width = self.machine.backend.config.fixed_width
            pmcs.append(TopdownMetrics(METRIC_BASE, td.metrics, width))
        vcpu.ext[self.name] = pmcs
        for pmc in pmcs:
            vcpu.views += pmc.views
        return list(pmcs)

    @hookimpl
    def vpmu_vcpu_msr_handlers(self, vcpu: VcpuPort) -> list[MsrHandler]:
        rows: list[MsrHandler] = []
        events = vcpu.pmu.events
        pmcs: list[GroupedPmc] = vcpu.ext[self.name]
        for cfg, pmc in zip(self.config.counters, pmcs, strict=False):
            pmc.bind_keys([events[f.event][0] for f in cfg.fields])
            rows += self._generic_rows(vcpu, cfg.msr, cfg.ctrl_msr, pmc)
        ctrl_bits = 0
        if self.config.topdown is not None:
            rows.append(self._topdown(vcpu, pmcs[-1]))
            ctrl_bits = EN_PERF_METRICS
        # A vendor with a global status register (Intel) records a field wrap at the
        # PMC's index: let the guest clear it there, and enable PERF_METRICS.
        opener = getattr(vcpu.pmu, "open_global_bits", None)
        if opener is not None:
            opener(ctrl_bits, sum(1 << p.idx for p in pmcs))
        return rows

    @hookimpl
    def vpmu_vcpu_ready(self, vcpu: VcpuPort) -> None:
        readers: dict[int, Callable[[], int]] = {}
        pmcs: list[GroupedPmc] = vcpu.ext[self.name]
        for cfg, pmc in zip(self.config.counters, pmcs, strict=False):
            if cfg.rdpmc is not None:
                readers[cfg.rdpmc] = pmc.read
        if self.config.topdown is not None:
            readers[RDPMC_METRICS] = pmcs[-1].read
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
            if isinstance(pmc, TopdownMetrics):
                continue  # follows fixed counter 3, restored by the backend
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

    def _topdown(self, vcpu: VcpuPort, metrics: GroupedPmc) -> MsrHandler:
        assert isinstance(metrics, TopdownMetrics)
        pmu: Any = vcpu.pmu
        fixed3 = pmu.fixed[FIXED3]
        metrics.slots_pmc = fixed3
        keys: list[EventKey] = [SLOTS_KEY, *(pmu.events[e][0] for e in L1_EVENTS)]
        keys += L2_EVENTS[: metrics.metrics - 4]
        metrics.bind_keys(keys)
        pmu.perf_capabilities |= 1 << 15  # PERF_CAPABILITIES.PERF_METRICS

        def follow() -> None:
            if metrics.follow_fixed3(fixed3, pmu.global_ctrl):
                vcpu.request_reprogram(metrics)

        pmu.control_listeners.append(follow)
        return MsrHandler(
            PERF_METRICS,
            "IA32_PERF_METRICS",
            METRICS,
            metrics.read,
            metrics.write,
            counter=metrics.idx,
            owner=self.name,
        )
