"""Linux's Intel perf driver (arch/x86/events/intel/core.c) as MSR accesses."""

from __future__ import annotations

from vpmu_core.counters import FIXED_BASE, EventKey
from vpmu_core.guest import GuestDriver

from . import msrs as M


class IntelGuestDriver(GuestDriver):
    def program_gp(self, i: int, key: EventKey, *, usr: bool, os: bool, intr: bool = False) -> None:
        sel, umask = key
        value = (sel & 0xFF) | (umask << 8) | M.EVTSEL_EN
        value |= (M.EVTSEL_USR if usr else 0) | (M.EVTSEL_OS if os else 0)
        value |= M.EVTSEL_INT if intr else 0
        self.vcpu.wrmsr(M.PERFEVTSEL0 + i, value)

    def stop_gp(self, i: int, key: EventKey, *, usr: bool, os: bool, intr: bool = False) -> None:
        """x86_pmu_disable_event: the same config with the enable bit clear."""
        sel, umask = key
        value = (sel & 0xFF) | (umask << 8)
        value |= (M.EVTSEL_USR if usr else 0) | (M.EVTSEL_OS if os else 0)
        value |= M.EVTSEL_INT if intr else 0
        self.vcpu.wrmsr(M.PERFEVTSEL0 + i, value)

    def read_status(self) -> int:
        if not self.vcpu.pmu.caps.has_global_status:
            return 0
        return self.vcpu.rdmsr(M.GLOBAL_STATUS)

    def ack_status(self, status: int) -> None:
        if status and self.vcpu.pmu.caps.has_global_status:
            self.vcpu.wrmsr(M.GLOBAL_OVF_CTRL, status)

    def program_fixed(self, i: int, *, usr: bool, os: bool, intr: bool = False) -> None:
        field = (M.FIXED_OS if os else 0) | (M.FIXED_USR if usr else 0)
        field |= M.FIXED_PMI if intr else 0
        ctrl = self.vcpu.rdmsr(M.FIXED_CTR_CTRL)
        ctrl = (ctrl & ~(0xF << (4 * i))) | (field << (4 * i))
        self.vcpu.wrmsr(M.FIXED_CTR_CTRL, ctrl)

    def write_counter(self, idx: int, value: int) -> None:
        caps = self.vcpu.pmu.caps
        if idx >= FIXED_BASE:
            self.vcpu.wrmsr(M.FIXED_CTR0 + idx - FIXED_BASE, value & ((1 << caps.fixed_width) - 1))
        elif caps.full_width_writes:
            self.vcpu.wrmsr(M.PMC0 + idx, value & ((1 << caps.gp_width) - 1))
        else:
            self.vcpu.wrmsr(M.PERFCTR0 + idx, value & 0xFFFF_FFFF)

    def read_counter(self, idx: int) -> int:
        if idx >= FIXED_BASE:
            return self.vcpu.rdpmc(M.RDPMC_FIXED | (idx - FIXED_BASE))
        return self.vcpu.rdpmc(idx)

    def _all_mask(self) -> int:
        """Linux's intel_ctrl: every counter, plus EN_PERF_METRICS where PERF_METRICS exists."""
        mask = ((1 << self.gp_counters) - 1) | (((1 << self.fixed_counters) - 1) << 32)
        caps = self.vcpu.msr_table.get(M.PERF_CAPABILITIES)
        if caps is not None and caps.read() & M.PERF_CAP_PERF_METRICS:
            mask |= 1 << 48
        return mask

    def enable_all(self) -> None:
        if self.vcpu.pmu.caps.has_global_ctrl:
            self.vcpu.wrmsr(M.GLOBAL_CTRL, self._all_mask())

    def disable_all(self) -> None:
        if self.vcpu.pmu.caps.has_global_ctrl:
            self.vcpu.wrmsr(M.GLOBAL_CTRL, 0)
            return
        for i in range(self.gp_counters):  # v1: clear each EN bit
            sel = self.vcpu.rdmsr(M.PERFEVTSEL0 + i)
            if sel & M.EVTSEL_EN:
                self.vcpu.wrmsr(M.PERFEVTSEL0 + i, sel & ~M.EVTSEL_EN)

    def handle_pmi(self, rearm: dict[int, int]) -> int:
        """intel_pmu_handle_irq (spec amd-and-topdown.md §4.3, costs.md §4d), late ack.

        Disable all, read the status, ack exactly what was read, per overflowed
        counter read it and re-arm it, re-read the status (the loop ends on 0),
        enable all, and unmask the LVTPC last: KVM masked it on delivery.
        """
        self.disable_all()
        status = self.read_status()
        self.ack_status(status)
        for idx, value in rearm.items():
            self.read_counter(idx)
            self.write_counter(idx, value)
        self.read_status()
        self.enable_all()
        self.unmask_pmi()
        return status
