"""Linux's Intel perf driver (arch/x86/events/intel/core.c) as MSR accesses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from mypy_extensions import mypyc_attr

from vpmu_core.counters import FIXED_BASE
from vpmu_core.errors import GuestFault
from vpmu_core.guest import GpEvent, GuestDriver, PmiClient, as_client, hw_config
from vpmu_core.port import GuestCpu

from . import msrs as M


@mypyc_attr(allow_interpreted_subclasses=True)
class IntelGuestDriver(GuestDriver):
    """Linux's Intel driver (intel_pmu_init), which the guest runs on a GenuineIntel CPU."""

    name: ClassVar[str] = "intel"
    vendors: ClassVar[tuple[str, ...]] = ("GenuineIntel",)

    def __init__(self, vcpu: GuestCpu) -> None:
        super().__init__(vcpu)
        self.active: dict[int, int] = {}  # GP counter -> its PERFEVTSEL with EN
        self.stopped: set[int] = set()  # counters a v1 disable_all cleared EN on
        self._intel_ctrl: int | None = None  # enable_all's mask, known at the first PMI
        # Since 6.1 (fae9ebde9696) fixed-counter start/stop only edit a cached
        # FIXED_CTR_CTRL (cpuc->fixed_ctrl_val); enable_all writes it when it changed.
        self._fixed_val = 0
        self._fixed_active = 0
        self.caches_fixed_ctrl = self.kernel >= (6, 1)  # use_kernel() decides it again

    def use_kernel(self, version: tuple[int, int]) -> None:
        super().use_kernel(version)
        self.caches_fixed_ctrl = version >= (6, 1)

    def program_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        value = hw_config(key, usr, os, intr) | M.EVTSEL_EN
        self.vcpu.wrmsr(M.PERFEVTSEL0 + i, value)
        self.active[i] = value
        self.stopped.discard(i)

    def stop_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        """x86_pmu_disable_event: the same config with the enable bit clear."""
        self.vcpu.wrmsr(M.PERFEVTSEL0 + i, hw_config(key, usr, os, intr))
        self.active.pop(i, None)
        self.stopped.discard(i)

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
        if self.caches_fixed_ctrl:  # intel_pmu_enable_fixed, 6.1+: the cache only
            self._fixed_val = (self._fixed_val & ~(0xF << (4 * i))) | (field << (4 * i))
            return
        ctrl = self.vcpu.rdmsr(M.FIXED_CTR_CTRL)
        ctrl = (ctrl & ~(0xF << (4 * i))) | (field << (4 * i))
        self.vcpu.wrmsr(M.FIXED_CTR_CTRL, ctrl)

    def stop_fixed(self, i: int) -> None:
        """intel_pmu_disable_fixed: before 6.1 read FIXED_CTR_CTRL, clear the field, write
        it back; since 6.1 clear the field in the cache."""
        if self.caches_fixed_ctrl:
            self._fixed_val &= ~(0xF << (4 * i))
            return
        ctrl = self.vcpu.rdmsr(M.FIXED_CTR_CTRL)
        self.vcpu.wrmsr(M.FIXED_CTR_CTRL, ctrl & ~(0xF << (4 * i)))

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
        """Linux's intel_ctrl: every counter, plus EN_PERF_METRICS where PERF_METRICS exists.

        Linux computes it once at driver init; so does this, at the first enable_all
        (enable_all runs at every PMI, tick and rotation, the counters never change).
        """
        if self._intel_ctrl is None:
            # cntr_mask64 | fixed_cntr_mask64 << 32: the counters that exist (v6 may have holes)
            pmcs = self.vcpu.pmu.counters()
            mask = sum(1 << pmc.idx for pmc in pmcs if pmc.kind in ("gp", "fixed"))
            if self._boot_rdmsr(M.PERF_CAPABILITIES) & M.PERF_CAP_PERF_METRICS:
                mask |= 1 << 48
            self._intel_ctrl = mask
        return self._intel_ctrl

    def _boot_rdmsr(self, msr: int) -> int:
        """An MSR Linux reads once at boot (rdmsrl_safe): before the run, so no exit counts."""
        try:
            return self.vcpu.host_rdmsr(msr)
        except GuestFault:
            return 0

    def enable_all(self) -> None:
        if self.caches_fixed_ctrl and self._fixed_val != self._fixed_active:
            # __intel_pmu_enable_all, 6.1+: FIXED_CTR_CTRL only when it changed
            self.vcpu.wrmsr(M.FIXED_CTR_CTRL, self._fixed_val)
            self._fixed_active = self._fixed_val
        if self.vcpu.pmu.caps.has_global_ctrl:
            self.vcpu.wrmsr(M.GLOBAL_CTRL, self._all_mask())
            return
        # v1 (x86_pmu_enable_all): set EN again on the counters disable_all stopped
        for i in sorted(self.stopped):
            self.vcpu.wrmsr(M.PERFEVTSEL0 + i, self.active[i])
        self.stopped.clear()

    def disable_all(self) -> None:
        if self.vcpu.pmu.caps.has_global_ctrl:
            self.vcpu.wrmsr(M.GLOBAL_CTRL, 0)
            return
        for i in sorted(self.active):  # v1 (x86_pmu_disable_all): clear each active EN
            sel = self.vcpu.rdmsr(M.PERFEVTSEL0 + i)
            if sel & M.EVTSEL_EN:
                self.vcpu.wrmsr(M.PERFEVTSEL0 + i, sel & ~M.EVTSEL_EN)
                self.stopped.add(i)

    def handle_pmi(self, rearm: Mapping[int, int] | PmiClient) -> int:
        """intel_pmu_handle_irq (spec amd-and-topdown.md §4.3, costs.md §4d), late ack.

        Disable all, read the status, then loop: ack exactly what was read, per
        overflowed counter read it (update) and re-arm it (set_period) and let perf
        take the sample, re-read the status; at most 100 rounds. Enable all, and
        unmask the LVTPC last: KVM masked it on delivery.
        """
        client = as_client(rearm)
        self.disable_all()
        first = status = self.read_status()
        loops = 0
        while status and loops < 100:
            loops += 1
            self.ack_status(status)
            bits = status & HANDLED_BITS
            while bits:
                low = bits & -bits
                idx = low.bit_length() - 1
                bits ^= low
                client.update(idx, self.read_counter(idx))
                value = client.rearm(idx)
                if value is not None:
                    self.write_counter(idx, value)
                client.overflowed(idx)
            status = self.read_status()
        self.enable_all()
        self.unmask_pmi()
        return first


# Counter overflow bits handle_pmi_common walks: GP 0-31 and fixed 32-47; bit 48
# (PERF_METRICS), 55, 58, 60-63 are flags the extension or nobody here handles.
HANDLED_BITS = (1 << 48) - 1
