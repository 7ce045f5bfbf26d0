"""Architectural PerfMon v6: counter bitmaps with holes (CPUID leaf 0x23), UMASK2 and EQ.

Linux reads the bitmaps in update_pmu_cap (arch/x86/events/intel/core.c; leaf bit
fixed by 47a973fd7563 "perf/x86/intel: Fix ARCH_PERFMON_NUM_COUNTER_LEAF").
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core import api
from vpmu_core.errors import ConfigError, GuestFault, SnapshotError
from vpmu_core.machine import Machine

GP_BITS, FIXED_BITS = 0b10110101, 0b1011


def v6(**pmu: Any) -> Any:
    cfg = {"backend": "intel", "version": 6, "gp_bitmap": GP_BITS, "fixed_bitmap": FIXED_BITS}
    cfg.update(pmu)
    return vpmu.Machine.from_dict({"pmu": cfg}).vcpus[0]


def test_counters_exist_only_at_the_bitmap_indexes() -> None:
    v = v6()
    assert sorted(v.counters) == [0, 2, 4, 5, 7, 32, 33, 35]
    assert (v.pmu.caps.gp_counters, v.pmu.caps.fixed_counters) == (5, 3)


def test_cpuid_leaves() -> None:
    v = v6()
    assert v.cpuid(0)[0] == 0x23
    assert v.cpuid(7, 1)[0] == 1 << 8
    eax, _, ecx, edx = v.cpuid(0xA)
    assert (eax & 0xFF, (eax >> 8) & 0xFF) == (6, 1)  # counters 0.. up to the first hole
    assert (ecx, edx & 0x1F) == (FIXED_BITS, 2)
    assert v.cpuid(0x23, 0) == (0b11, 0b11, 0, 0)
    assert v.cpuid(0x23, 1) == (GP_BITS, FIXED_BITS, 0, 0)
    assert v.pmu.cpuid_shape()["gp_counters"] == 5
    assert v.pmu.cpuid_shape()["fixed_counters"] == 3


@pytest.mark.parametrize("msr", [0xC2, 0x4C2, 0x187, 0xC4, 0x4C4, 0x189, 0xC7, 0x18C, 0x30B])
def test_absent_counter_msrs_fault(msr: int) -> None:
    v = v6()
    with pytest.raises(GuestFault):
        v.rdmsr(msr)
    with pytest.raises(GuestFault):
        v.wrmsr(msr, 0)


def test_present_counter_msrs_answer() -> None:
    v = v6()
    v.wrmsr(0x4C1 + 7, 0x1234)
    assert v.rdmsr(0xC1 + 7) == 0x1234
    assert v.rdpmc(7) == 0x1234
    v.wrmsr(0x309 + 3, 0x55)
    assert v.rdpmc((1 << 30) | 3) == 0x55


@pytest.mark.parametrize("ecx", [1, 3, 6, 8, (1 << 30) | 2, (1 << 30) | 4])
def test_absent_rdpmc_index_faults(ecx: int) -> None:
    with pytest.raises(GuestFault):
        v6().rdpmc(ecx)


@pytest.mark.parametrize("bit", [1, 3, 6, 8, 34, 36])
def test_absent_counter_global_bits_are_reserved(bit: int) -> None:
    v = v6()
    for msr in (0x38F, 0x390):
        with pytest.raises(GuestFault):
            v.wrmsr(msr, 1 << bit)


def test_global_ctrl_takes_every_present_bit_and_resets_to_the_gp_bitmap() -> None:
    v = v6()
    assert v.rdmsr(0x38F) == GP_BITS
    v.wrmsr(0x38F, GP_BITS | (FIXED_BITS << 32))
    assert v.rdmsr(0x38F) == 0xB_0000_00B5
    v.wrmsr(0x390, GP_BITS | (FIXED_BITS << 32))


def test_absent_fixed_counter_field_is_reserved() -> None:
    v = v6()
    v.wrmsr(0x38D, 0xB0BB)  # fields 0, 1, 3
    assert v.rdmsr(0x38D) == 0xB0BB
    with pytest.raises(GuestFault):
        v.wrmsr(0x38D, 0x300)  # field 2: fixed counter 2 is absent


def test_umask2_and_eq_writable_on_v6_only() -> None:
    v = v6()
    value = (0xA5 << 40) | (1 << 36) | 0x43003C
    v.wrmsr(0x186, value)
    assert v.rdmsr(0x186) == value
    old = vpmu.Machine.from_dict({"pmu": {"backend": "intel", "version": 5}}).vcpus[0]
    for bit in (1 << 36, 1 << 40, 1 << 47):
        with pytest.raises(GuestFault):
            old.wrmsr(0x186, bit | 0x43003C)


def test_v6_has_no_legacy_quirk_rows() -> None:
    """KVM's drop-the-write quirk for 0xC2/0x187 is not the architecture: v6 #GPs."""
    v = v6()
    assert 0xC2 not in v.msr_table and 0x187 not in v.msr_table


@pytest.mark.parametrize(
    ("pmu", "message"),
    [
        (
            {"version": 5, "gp_bitmap": GP_BITS},
            "pmu.gp_bitmap = 181: counter bitmaps are CPUID leaf 0x23: needs version >= 6, not 5",
        ),
        (
            {"version": 6, "gp_bitmap": GP_BITS, "gp_counters": 8},
            "pmu.gp_counters = 8: gp_bitmap 0b10110101 has 5 counters; omit gp_counters",
        ),
    ],
)
def test_bitmap_config_errors(pmu: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        vpmu.Machine.from_dict({"pmu": {"backend": "intel", **pmu}})
    assert str(err.value) == message


def test_dense_v6_without_bitmaps_is_contiguous() -> None:
    v = vpmu.Machine.from_dict({"pmu": {"backend": "intel", "version": 6}}).vcpus[0]
    assert sorted(v.counters) == [0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34]
    assert v.cpuid(0x23, 1) == (0xFF, 0b111, 0, 0)


# ------------------------------------------------------------------ snapshots
def _busy(v: Any) -> Any:
    """Program GP 7 (above every hole) and fixed 0 and 3, count, overflow PMC7."""
    v.wrmsr(0x186 + 7, 0x5300C0)  # PERFEVTSEL7: instructions, OS+USR, EN, INT
    v.wrmsr(0x4C1 + 7, (1 << 48) - 10)
    v.wrmsr(0x38D, 0x3003)  # FIXED_CTR_CTRL fields 0 and 3: OS+USR
    v.wrmsr(0x38F, GP_BITS | (FIXED_BITS << 32))
    v.retire("instructions", 40, cpl=3)
    return v


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (
            {"gp_bitmap": 0b00011111},
            "snapshot counter indexes [0, 2, 4, 5, 7, 32, 33, 35] differ from this machine's "
            "[0, 1, 2, 3, 4, 32, 33, 35]: only in the snapshot [5, 7], only here [1, 3]",
        ),
        (
            {"fixed_bitmap": 0b0111},
            "snapshot counter indexes [0, 2, 4, 5, 7, 32, 33, 35] differ from this machine's "
            "[0, 2, 4, 5, 7, 32, 33, 34]: only in the snapshot [35], only here [34]",
        ),
    ],
    ids=["gp-bitmap", "fixed-bitmap"],
)
def test_snapshot_refused_across_bitmaps_with_equal_counts(
    other: dict[str, Any], message: str
) -> None:
    """Equal counts (5 GP, 3 fixed) and caps: only the counter indexes tell the PMUs apart."""
    snap = _busy(v6()).snapshot()
    target = v6(**other)
    assert target.pmu.shape() == v6().pmu.shape()  # the caps cannot see the difference
    before = target.snapshot()
    with pytest.raises(SnapshotError) as err:
        target.restore(snap)
    assert str(err.value) == message
    assert target.snapshot() == before  # refused before anything was loaded


def test_snapshot_round_trips_on_the_same_bitmap() -> None:
    a = _busy(v6())
    snap = a.snapshot()
    assert sorted(snap.counters, key=int) == ["0", "2", "4", "5", "7", "32", "33", "35"]
    b = v6()
    b.restore(snap.model_dump_json())
    assert b.snapshot() == snap
    # PMC7: 2^48 - 10, the 3 WRMSRs after it (GLOBAL_CTRL resets to the GP bitmap, so
    # bit 7 is on) and the 40 retired: wrapped to 33, its status bit set, not a hole's.
    # FIXED_CTR0: the GLOBAL_CTRL write, the 40, and the RDMSR of PMC7 before it.
    reads = (0xC1 + 7, 0x309, 0x38E, 0x186 + 7, 0x38D, 0x38F)
    want = [33, 42, 1 << 7, 0x5300C0, 0x3003, GP_BITS | (FIXED_BITS << 32)]
    assert [b.rdmsr(msr) for msr in reads] == want
    assert [a.rdmsr(msr) for msr in reads] == want


# ------------------------------------------------- perf record on the holes
PERF_RECORD = Path(__file__).parents[2] / "configs" / "intel-v6-perf-record.toml"
PRESENT = {0, 2, 4, 5, 7, 32, 33, 35}  # GP bitmap 0b10110101, fixed 0b1011 at 32 + j


class Seen:
    """What the guest did to the PMU, by PMC index (GP i, fixed j at 32 + j)."""

    def __init__(self) -> None:
        self.enabled: set[int] = set()  # eventsel written with EN, FIXED_CTR_CTRL fields on
        self.accessed: set[int] = set()  # counter MSRs written, RDPMC indexes read
        self.global_ctrl: set[int] = set()
        self.acked: Counter[int] = Counter()  # GLOBAL_OVF_CTRL bits: overflows handled

    def attach(self, drv: Any) -> None:
        """See every access of guest driver ``drv``: its vCPU becomes a recording proxy
        (the driver reaches the vCPU through the GuestCpu protocol, compiled or not)."""
        drv.vcpu = _SpyCpu(drv.vcpu, self)


class _SpyCpu:
    """A vCPU as a guest driver sees it, recording what the driver does to the PMU."""

    def __init__(self, v: Any, seen: Seen) -> None:
        self._v = v
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._v, name)

    def wrmsr(self, msr: int, value: int) -> None:
        seen = self._seen
        if 0x186 <= msr < 0x186 + 32 and value & (1 << 22):
            seen.enabled.add(msr - 0x186)
        elif msr == 0x38D:
            seen.enabled |= {32 + j for j in range(4) if value >> (4 * j) & 0xF}
        elif 0x4C1 <= msr < 0x4C1 + 32 or 0xC1 <= msr < 0xC1 + 32:
            seen.accessed.add(msr - (0x4C1 if msr >= 0x4C1 else 0xC1))
        elif 0x309 <= msr < 0x309 + 4:
            seen.accessed.add(32 + msr - 0x309)
        elif msr == 0x38F:
            seen.global_ctrl.add(value)
        elif msr == 0x390:
            seen.acked.update(b for b in range(64) if value >> b & 1)
        self._v.wrmsr(msr, value)

    def rdpmc(self, ecx: int) -> int:
        self._seen.accessed.add(32 + (ecx & 0xF) if ecx & (1 << 30) else ecx)
        return int(self._v.rdpmc(ecx))


def _run_spied(monkeypatch: pytest.MonkeyPatch, source: Any) -> tuple[Any, Seen]:
    """``vpmu run`` (api.run) with every guest WRMSR and RDPMC seen on the way."""
    seen = Seen()

    class Spied(Machine):
        def guest_driver(self, vcpu: Any) -> Any:
            drv = super().guest_driver(vcpu)
            if not isinstance(drv.vcpu, _SpyCpu):
                seen.attach(drv)
            return drv

    monkeypatch.setattr(api, "Machine", Spied)
    return api.run(source), seen


def test_shipped_perf_record_six_events_on_the_counters_that_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """perf record -F 1000, 6 instructions events: fixed 0 and GP 0, 2, 4, 5, 7, 1 s,
    under `emulated` (no mediated design shows a guest v6)."""
    result, seen = _run_spied(monkeypatch, PERF_RECORD)  # a GuestFault would raise here
    assert sorted(seen.enabled) == [0, 2, 4, 5, 7, 32]  # all fit: no rotation
    assert seen.accessed == seen.enabled  # written and read only where an event runs
    assert seen.global_ctrl == {0, GP_BITS | FIXED_BITS << 32}  # disable_all, enable_all
    extra = result.extra
    # perf enabled the six events one ioctl apart: their overflows never coincide, so
    # each PMI handles one counter (costs.md §3e), about six times the PMIs of one event
    # per second of the guest's wall clock, which perf's frequency mode follows
    (pmis,) = result.pmis
    assert sum(seen.acked.values()) == pmis + result.pmis_dropped[0] == 6132
    assert extra["rotations"] == 0
    # the ~97 µs emulated handler makes perf lower its rate and throttle; a tick comes
    # after every stall, so the throttled events restart before the guest works again
    assert extra["max_sample_rate_final"] == 2000
    assert (extra["throttles"], extra["samples_lost_throttling"]) == (148, 0)
    assert 95_000 < extra["guest_handler_avg_ns"] < 100_000


@pytest.mark.parametrize(
    ("pmu", "intel_ctrl"),
    [
        ({"version": 6, "gp_bitmap": 0b10110101, "fixed_bitmap": 0b1011}, 0b1011 << 32 | 0xB5),
        ({"version": 5, "gp_counters": 8, "fixed_counters": 4}, 0xF << 32 | 0xFF),
        (
            {"version": 5, "gp_counters": 8, "fixed_counters": 4, "topdown_metrics": 8},
            1 << 48 | 0xF << 32 | 0xFF,
        ),
    ],
)
def test_the_guest_driver_enables_exactly_the_counters_that_exist(
    pmu: dict[str, int], intel_ctrl: int
) -> None:
    """Linux's intel_ctrl: the counter bitmaps, plus EN_PERF_METRICS only where it is enumerated."""
    m = vpmu.Machine.from_dict({"pmu": {"backend": "intel", **pmu}})
    cpu = m.vcpus[0]
    drv = m.guest_driver(cpu)
    drv.enable_all()
    assert cpu.rdmsr(0x38F) == intel_ctrl
    drv.disable_all()
    drv.enable_all()  # computed once, the same every time
    assert cpu.rdmsr(0x38F) == intel_ctrl
