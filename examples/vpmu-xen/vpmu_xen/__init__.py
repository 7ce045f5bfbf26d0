"""``xen``: Xen's HVM vPMU on Intel as a third-party vpmu strategy.

Why a model of its own: Xen virtualizes the PMU without host perf events. The
guest's PMU context (counters and controls) is put in the hardware the first time
the guest touches a PMU MSR after a switch (``core2_vpmu_msr_common_check`` in
xen/arch/x86/cpu/vpmu_intel.c: "lazy load", sets ``VPMU_CONTEXT_LOADED``), and only
then is the MSR bitmap opened (``core2_vpmu_set_msr_bitmap``: counters read and
written directly, event selects and FIXED_CTR_CTRL read directly, every control
write still intercepted). The context is saved when the vCPU is descheduled
(``vpmu_save``, called from the context switch since commit defa4e51d20a, "x86/vpmu:
Fix race-condition in vpmu_load", Xen 4.17; before it the save was deferred until
another vCPU or another pCPU needed the hardware). A counter overflow interrupts
Xen, which injects the PMI through the guest's virtual LAPIC (``vpmu_do_interrupt``
in xen/arch/x86/cpu/vpmu.c, ``vlapic_set_irq``). Xen refuses a host PMU of a
version other than 2..5 and emulates 4 and 5 as 3 (``core2_vpmu_init``). Sources
read at xen-project/xen commit c447b7308b13.

Model choices not taken from Xen's source: RDPMC runs natively once the context is
loaded (counters are in hardware); each load and save is one ledger event priced
as an estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

import vpmu_core as vpmu
from vpmu_core.msr import (
    COUNTER,
    EVENTSEL,
    FIXED_CTRL,
    GLOBAL_CTRL,
    GLOBAL_STATUS,
    GLOBAL_STATUS_CLR,
)

XEN_COMMIT = "c447b7308b1330ec6dcfef37220736c28f41daa0"
EAGER_SAVE_COMMIT = "defa4e51d20a143bdd4395a075bf0933bb38a9a4"

# Readable without an exit once the bitmap is open (core2_vpmu_set_msr_bitmap).
READ_THROUGH = (EVENTSEL, FIXED_CTRL)
# The MSRs is_core2_vpmu_msr accepts (an access to one of them loads the context).
PMU_CLASSES = frozenset(
    (COUNTER, EVENTSEL, FIXED_CTRL, GLOBAL_CTRL, GLOBAL_STATUS, GLOBAL_STATUS_CLR)
)
SUPPORTED_VERSIONS = (2, 3, 4, 5)  # core2_vpmu_init; 4 and 5 are emulated as 3


class XenConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["xen"]
    save: Literal["eager", "lazy"] = Field(
        "eager",
        description="'eager': the context is saved whenever the vCPU is descheduled "
        "(Xen 4.17+, commit defa4e51d20a); 'lazy': it stays loaded until the vCPU "
        "comes back on another pCPU (older Xen)",
    )


class XenAllocator(vpmu.CounterAllocator):
    """No host events: the guest's controls are written to hardware on the intercepted
    write itself, so a reprogram has nothing to do."""

    hears_overflows: ClassVar[bool] = True

    def __init__(self, vcpu: vpmu.VcpuPort, strategy: Xen) -> None:
        self.vcpu = vcpu
        self.strategy = strategy
        self.ledger = vcpu.machine.ledger

    def overflowed(self, pmc: vpmu.Pmc) -> None:
        # The hardware PMI interrupts Xen (an exit) unless it shares one with another counter.
        if not self.vcpu.pmi_pending:
            self.vcpu.count_exit("host_pmi")
            self.ledger.pmis["xen_pmi"] += 1


class VlapicPmiPath:
    """vpmu_do_interrupt: Xen raises the guest's LVTPC vector in its virtual LAPIC."""

    def __init__(self, vcpu: vpmu.VcpuPort) -> None:
        self.vcpu = vcpu
        self.pmis = vcpu.machine.ledger.pmis

    def deliver(self) -> None:
        if self.vcpu.deliver_pmi():
            self.pmis["xen_vlapic_inject"] += 1


class Xen(vpmu.Strategy):
    """Xen HVM vPMU: lazy context load, bitmap opened once loaded, eager or lazy save."""

    name: ClassVar[str] = "xen"
    Config: ClassVar[type[BaseModel]] = XenConfig

    def __init__(self, config: Any, machine: vpmu.MachinePort) -> None:
        super().__init__(config, machine)
        self.loaded: set[int] = set()  # vCPU indexes whose context is in hardware
        self.last_pcpu: dict[int, int] = {}  # vpmu->last_pcpu, set on save/load
        self.events = machine.ledger.events

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse what core2_vpmu_init refuses (and what this model does not cover)."""
        if config.pmu.backend != "intel":
            raise vpmu.ConfigError(
                "pmu.backend",
                config.pmu.backend,
                "the xen strategy models Xen's Intel vPMU (vpmu_intel.c) only",
            )
        version = plugins.registry["backends"][config.pmu.backend].capabilities(config.pmu).version
        if version not in SUPPORTED_VERSIONS:
            raise vpmu.ConfigError(
                "pmu.version",
                version,
                "Xen's vPMU supports architectural PerfMon versions 2 to 5 "
                "(core2_vpmu_init returns -EINVAL otherwise)",
            )

    # ------------------------------------------------------------- MSR bitmap
    def intercept(self, vcpu: vpmu.VcpuPort, handler: vpmu.MsrHandler, write: bool) -> str | None:
        reason = f"{'wrmsr' if write else 'rdmsr'}:{handler.klass}"
        if vcpu.index not in self.loaded:
            return reason  # every PMU MSR exits until the context is loaded
        if handler.klass == COUNTER:
            return None
        if handler.klass in READ_THROUGH and not write:
            return None
        return reason

    def rdpmc_exits(self, vcpu: vpmu.VcpuPort) -> bool:
        return vcpu.index not in self.loaded

    def _touched(self, vcpu: vpmu.VcpuPort) -> None:
        """core2_vpmu_msr_common_check: the first PMU MSR access loads the context."""
        if vcpu.index not in self.loaded:
            self.loaded.add(vcpu.index)
            self.last_pcpu[vcpu.index] = self.machine.host.pcpu_of(vcpu)
            self.events["xen_ctxt_load"] += 1
            self._rebind(vcpu)  # core2_vpmu_set_msr_bitmap

    def _save(self, vcpu: vpmu.VcpuPort) -> None:
        self.loaded.discard(vcpu.index)
        self.events["xen_ctxt_save"] += 1
        self._rebind(vcpu)  # the next access must exit and load again

    def _rebind(self, vcpu: vpmu.VcpuPort) -> None:
        for msr, h in vcpu.msr_table.items():
            if h.klass in PMU_CLASSES:
                vcpu.rebind_msr(msr)

    @vpmu.hookimpl
    def vpmu_vcpu_ready(self, vcpu: vpmu.VcpuPort) -> None:
        """Bind, once, the load-on-first-access step in front of every PMU MSR."""
        for msr, h in list(vcpu.msr_table.items()):
            if h.klass not in PMU_CLASSES:
                continue

            vcpu.wrap_msr(msr, lambda row: self._load_first(vcpu, row))

    def _load_first(self, vcpu: vpmu.VcpuPort, row: vpmu.MsrHandler) -> vpmu.MsrHandler:
        def read(inner: Callable[[], int] = row.read) -> int:
            self._touched(vcpu)
            return inner()

        def write(value: int, inner: Callable[[int], None] = row.write) -> None:
            self._touched(vcpu)
            inner(value)

        return replace(row, read=read, write=write)

    # ------------------------------------------------------- context switch
    def vcpu_sched_out(self, vcpu: vpmu.VcpuPort) -> None:
        """vpmu_save at the context switch (eager, Xen 4.17+)."""
        if vcpu.index in self.loaded and self.config.save == "eager":
            self._save(vcpu)

    def vcpu_sched_in(self, vcpu: vpmu.VcpuPort, pcpu: int, migrated: bool) -> None:
        """Lazy: a context left behind on another pCPU is saved there (IPI) first."""
        if vcpu.index in self.loaded and pcpu != self.last_pcpu.get(vcpu.index):
            self._save(vcpu)

    @vpmu.hookimpl
    def vpmu_counter_allocator(self, vcpu: vpmu.VcpuPort) -> Any:
        return XenAllocator(vcpu, self)

    @vpmu.hookimpl
    def vpmu_pmi_path(self, vcpu: vpmu.VcpuPort) -> Any:
        return VlapicPmiPath(vcpu)


SOURCE = f"xen-project/xen {XEN_COMMIT[:12]}"


@vpmu.hookimpl
def vpmu_register_strategies(register: Callable[[type[Any]], None]) -> None:
    register(Xen)


# Xen's own ledger keys: (category, key, what one count means, default ns, range, where).
# No one published these costs, so every one is an estimate inside a range.
MECHANISMS = (
    (
        "events",
        "xen_ctxt_load",
        "Xen loads the vPMU context on the first PMU MSR access after a switch",
        1200.0,
        (600.0, 3000.0),
        "xen/arch/x86/cpu/vpmu_intel.c core2_vpmu_msr_common_check "
        "(__core2_vpmu_load: ~2 WRMSR per counter)",
    ),
    (
        "events",
        "xen_ctxt_save",
        "Xen saves the vPMU context when the vCPU leaves the hardware",
        1000.0,
        (500.0, 2500.0),
        "xen/arch/x86/cpu/vpmu.c vpmu_save / vpmu_intel.c core2_vpmu_save",
    ),
    (
        "pmis",
        "xen_pmi",
        "a counter overflow interrupts Xen (vpmu_do_interrupt)",
        500.0,
        (200.0, 1500.0),
        "xen/arch/x86/cpu/vpmu.c vpmu_do_interrupt",
    ),
    (
        "pmis",
        "xen_vlapic_inject",
        "Xen raises the guest's LVTPC vector in its vLAPIC",
        300.0,
        (200.0, 1500.0),
        "xen/arch/x86/cpu/vpmu.c vpmu_do_interrupt",
    ),
)


@vpmu.hookimpl
def vpmu_register_mechanisms(register: Callable[[Any], None]) -> None:
    """Xen's own ledger keys, each priced by a cost of the same name."""
    for category, key, meaning, ns, (low, high), where in MECHANISMS:
        cost = vpmu.Cost(ns=ns, low=low, high=high, source=f"{where}, {SOURCE}", estimate=True)
        register(
            vpmu.Mechanism(category=category, key=key, meaning=meaning, cost=key, default=cost)
        )
