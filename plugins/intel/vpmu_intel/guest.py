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
        return ((1 << self.gp_counters) - 1) | (((1 << self.fixed_counters) - 1) << 32)

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
