"""Linux's AMD perf driver (arch/x86/events/amd/core.c) as MSR accesses (spec §4.2, §4.4).

The driver picks its MSR window the way Linux does, from CPUID: the interleaved
core-extension MSRs when PerfCtrExtCore is set, the K7 MSRs otherwise, and the
PerfMonV2 enable path when 0x80000022 EAX bit 0 is set.

Two simplifications, both of reads or of writes that change no value, so no count
differs from Linux's: the in-flight-overflow polls after a disable (Linux's
amd_pmu_check_overflow) are left out, and a v1 ``enable_all`` rewrites only the
counters ``disable_all`` stopped, where Linux's x86_pmu_enable_all rewrites every
active one with the value it already holds. The latter keeps the instructions a
counting run sees the same on every vendor: one enabling WRMSR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from mypy_extensions import mypyc_attr

from vpmu_core.guest import GpEvent, GuestDriver, PmiClient, as_client, hw_config
from vpmu_core.port import GuestCpu

from . import msrs as M


@mypyc_attr(allow_interpreted_subclasses=True)
class AmdGuestDriver(GuestDriver):
    """Linux's AMD driver (amd_pmu_init), which the guest runs on AMD and on Hygon CPUs."""

    name: ClassVar[str] = "amd"
    vendors: ClassVar[tuple[str, ...]] = ("AuthenticAMD", "HygonGenuine")

    def __init__(self, vcpu: GuestCpu) -> None:
        super().__init__(vcpu)
        # read at boot (amd_pmu_init), before anything is counted
        core_ext = bool(vcpu.cpuid_table(0x80000001)[2] & M.PERFCTR_CORE)
        self.v2 = bool(vcpu.cpuid_table(0x80000022)[0] & M.PERFMON_V2)
        self.ctl_base, self.ctr_base, self.stride = (
            (M.F15H_PERF_CTL0, M.F15H_PERF_CTR0, 2)
            if core_ext
            else (M.K7_EVNTSEL0, M.K7_PERFCTR0, 1)
        )
        self.active: dict[int, int] = {}  # counter -> its PERF_CTL config with EN
        self.stopped: set[int] = set()  # counters a v1 disable_all cleared EN on

    def ctl(self, i: int) -> int:
        return self.ctl_base + self.stride * i

    def ctr(self, i: int) -> int:
        return self.ctr_base + self.stride * i

    def program_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        value = hw_config(key, usr, os, intr) | M.EVTSEL_EN
        self.active[i] = value
        self.stopped.discard(i)
        self.vcpu.wrmsr(self.ctl(i), value)

    def program_fixed(self, i: int, *, usr: bool, os: bool, intr: bool = False) -> None:
        raise ValueError("AMD has no fixed counters")

    def start_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        """x86_pmu_start inside perf_pmu_disable: v2 writes EN now, v1 leaves it to
        enable_all (amd_pmu_enable_event checks cpuc->enabled)."""
        if self.v2:
            self.program_gp(i, key, usr=usr, os=os, intr=intr)
            return
        self.active[i] = hw_config(key, usr, os, intr) | M.EVTSEL_EN
        self.stopped.add(i)

    def stop_fixed(self, i: int) -> None:
        raise ValueError("AMD has no fixed counters")

    def write_counter(self, idx: int, value: int) -> None:
        self.vcpu.wrmsr(self.ctr(idx), value & ((1 << M.COUNTER_WIDTH) - 1))

    def read_counter(self, idx: int) -> int:
        return self.vcpu.rdpmc(idx)

    def enable_all(self) -> None:
        if self.v2:
            # amd_pmu_v2_enable_all: every counter's bit, not only the active ones.
            self.vcpu.wrmsr(M.GLOBAL_CTL, (1 << self.gp_counters) - 1)
            return
        for i in sorted(self.stopped):
            self.vcpu.wrmsr(self.ctl(i), self.active[i])
        self.stopped.clear()

    def disable_all(self) -> None:
        if self.v2:
            self.vcpu.wrmsr(M.GLOBAL_CTL, 0)
            return
        # x86_pmu_disable_all: read each active PERF_CTL, clear EN where it is set.
        for i in sorted(self.active):
            sel = self.vcpu.rdmsr(self.ctl(i))
            if sel & M.EVTSEL_EN:
                self.vcpu.wrmsr(self.ctl(i), sel & ~M.EVTSEL_EN)
                self.stopped.add(i)

    def stop_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        """x86_pmu_disable_event: the same config with EN clear."""
        self.vcpu.wrmsr(self.ctl(i), hw_config(key, usr, os, intr))

    def read_status(self) -> int:
        return self.vcpu.rdmsr(M.GLOBAL_STATUS) if self.v2 else 0

    def ack_status(self, status: int) -> None:
        if self.v2 and status:
            self.vcpu.wrmsr(M.GLOBAL_STATUS_CLR, status)

    def handle_pmi(self, rearm: Mapping[int, int] | PmiClient) -> int:
        """amd_pmu_handle_irq (v1) or amd_pmu_v2_handle_irq (spec §4.1, §4.2)."""
        client = as_client(rearm)
        active = sorted(self.active)
        if not self.v2:
            # v1: unmask LVTPC first; scan every active counter, overflowed = bit 47
            # clear; re-arm those. No global disable, no status to ack.
            self.unmask_pmi()
            status = 0
            for idx in active:
                value = self.read_counter(idx)
                client.update(idx, value)
                if value & (1 << (M.COUNTER_WIDTH - 1)):
                    continue
                status |= 1 << idx
                new = client.rearm(idx)
                if new is not None:
                    self.write_counter(idx, new)
                client.overflowed(idx)
            return status
        # v2: stop counting, read the status, update every active counter, re-arm the
        # overflowed ones, clear all status bits, re-enable. No LVTPC write: AMD's
        # LAPIC does not mask it on a PMI.
        self.vcpu.wrmsr(M.GLOBAL_CTL, 0)
        status = self.vcpu.rdmsr(M.GLOBAL_STATUS)
        if status:
            for idx in active:
                client.update(idx, self.read_counter(idx))
                if status >> idx & 1:
                    new = client.rearm(idx)
                    if new is not None:
                        self.write_counter(idx, new)
                    client.overflowed(idx)
            self.vcpu.wrmsr(M.GLOBAL_STATUS_CLR, (1 << 64) - 1)
        self.vcpu.wrmsr(M.GLOBAL_CTL, (1 << self.gp_counters) - 1)
        return status
