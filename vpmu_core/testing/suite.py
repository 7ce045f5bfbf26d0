"""The conformance tests. Each rule a backend must keep, with the capability it needs.

Every test takes ``vpmu_machine``, a factory of fresh machines for one
``vpmu_config`` (parametrized by the plugin over the installed backends'
conformance configs), so a hypothesis test can build one per example and a
differential test two. A test skips through :func:`need` on a ``Caps`` field or on
what the built vCPU has, never on a backend's name.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..counters import FIXED_BASE, Pmc
from ..errors import GuestFault
from ..guest import cpuid_vendor
from ..msr import COUNTER, GLOBAL_CTRL, GLOBAL_STATUS, MASK64
from ..vcpu import Vcpu
from .plugin import MachineFactory
from .qualifier_rules import TestQualifiers
from .support import fixed, gp, machine_of, need, vcpu_of

__all__ = [
    "TestAnyAccessSequence",
    "TestAnyMsrValue",
    "TestCounterWrites",
    "TestEventFilter",
    "TestMsrMap",
    "TestOverflow",
    "TestQualifiers",
    "TestSnapshot",
]

LVTPC = 0x834
LVTPC_NMI = 0x400
# An event no access retires on its own (the WRMSR/RDPMC instructions would
# disturb an "instructions" counter).
QUIET_EVENT = "cycles"


def arm(vcpu: Vcpu, pmc: Pmc, value: int, *, intr: bool) -> None:
    """Program ``pmc`` on QUIET_EVENT (OS+USR) at ``value`` and enable everything."""
    drv = machine_of(vcpu).guest_driver(vcpu)
    drv.disable_all()
    drv.write_counter(pmc.idx, value)
    if pmc.kind == "fixed":
        # a fixed counter counts its own event; pick the event it counts
        drv.program_fixed(pmc.idx - FIXED_BASE, usr=True, os=True, intr=intr)
    else:
        drv.program_gp(pmc.idx, drv.gp_key(QUIET_EVENT), usr=True, os=True, intr=intr)
    drv.enable_all()


def event_of(vcpu: Vcpu, pmc: Pmc) -> str | tuple[int, int]:
    if pmc.kind == "fixed":
        assert pmc.key is not None
        return pmc.key
    return QUIET_EVENT


class TestMsrMap:
    def test_counters_agree_with_caps(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        caps = v.pmu.caps
        assert len(gp(v)) == caps.gp_counters
        assert len(fixed(v)) == caps.fixed_counters
        assert all(p.width == caps.gp_width for p in gp(v))
        assert all(p.width == caps.fixed_width for p in fixed(v))

    def test_cpuid_agrees_with_msr_map(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        shape = v.pmu.cpuid_shape()
        answering = {h.counter for h in v.msr_table.values() if h.klass == COUNTER}
        kinds = [v.counters[i].kind for i in answering if i is not None]
        assert shape["gp_counters"] == kinds.count("gp")
        assert shape["fixed_counters"] == kinds.count("fixed")
        if shape["gp_counters"]:
            assert shape["gp_width"] == v.pmu.caps.gp_width
        if shape["fixed_counters"]:
            assert shape["fixed_width"] == v.pmu.caps.fixed_width

    def test_cpuid_vendor_agrees_with_caps(self, vpmu_machine: MachineFactory) -> None:
        """Leaf 0's vendor string is the declared one: a guest picks its driver by it."""
        v = vcpu_of(vpmu_machine)
        assert cpuid_vendor(v) == v.pmu.caps.vendor

    def test_global_registers_agree_with_caps(self, vpmu_machine: MachineFactory) -> None:
        """A declared global control/status register exists, and an undeclared one does not."""
        v = vcpu_of(vpmu_machine)
        klasses = {h.klass for h in v.msr_table.values()}
        assert (GLOBAL_CTRL in klasses) == v.pmu.caps.has_global_ctrl
        assert (GLOBAL_STATUS in klasses) == v.pmu.caps.has_global_status

    def test_counter_msrs_name_real_counters(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        for h in v.msr_table.values():
            if h.counter is not None:
                assert h.counter in v.counters, f"{h.name} aliases no counter ({h.counter})"

    def test_unclaimed_msrs_fault(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        for msr in (0x0, 0x1, 0xFFFF_FFFF, 0x4000_0000, 0xC000_0400):
            assert msr not in v.msr_table
            with pytest.raises(GuestFault):
                v.rdmsr(msr)
            with pytest.raises(GuestFault):
                v.wrmsr(msr, 0)

    def test_rdpmc_reaches_every_counter(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        drv = machine_of(v).guest_driver(v)
        for pmc in gp(v) + fixed(v):  # the vendor driver's counters; extensions have their own
            drv.write_counter(pmc.idx, 0x1234)
            assert drv.read_counter(pmc.idx) == 0x1234

    def test_pmu_msrs_fault_at_cpl3(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        v.cpl = 3
        for msr in list(v.msr_table)[:4]:
            with pytest.raises(GuestFault):
                v.rdmsr(msr)


class TestCounterWrites:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=st.integers(0, MASK64))
    def test_write_then_read_masks_to_width(self, vpmu_machine: MachineFactory, value: int) -> None:
        v = vcpu_of(vpmu_machine)
        caps = v.pmu.caps
        for h in v.msr_table.values():
            if h.klass != COUNTER or h.counter is None:
                continue
            pmc = v.counters[h.counter]
            try:
                v.wrmsr(h.msr, value)
            except GuestFault:
                assert value & ~pmc.mask, f"{h.name}: #GP for in-range {value:#x}"
                continue
            got = v.rdmsr(h.msr)
            assert got <= pmc.mask
            plain = value & pmc.mask
            extended = (((value & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000) & pmc.mask
            allowed = {plain, extended} if caps.legacy_writes_sign_extend else {plain}
            assert got in allowed, f"{h.name}: wrote {value:#x}, read {got:#x}"


class TestOverflow:
    @pytest.mark.parametrize("period", [1, 2, 1000, 123_457])
    def test_overflow_after_exactly_period_events(
        self, vpmu_machine: MachineFactory, period: int
    ) -> None:
        v = vcpu_of(vpmu_machine)
        v.wrmsr(LVTPC, LVTPC_NMI)
        for pmc in gp(v)[:1] + fixed(v)[1:2]:
            arm(v, pmc, (-period) & pmc.mask, intr=True)
            before = len(v.pmis)
            ev = event_of(v, pmc)
            v.retire(ev, period - 1, cpl=0)
            assert pmc.value == pmc.mask
            assert len(v.pmis) == before
            v.retire(ev, 1, cpl=0)
            assert pmc.value == 0
            assert len(v.pmis) == before + 1
            v.wrmsr(LVTPC, LVTPC_NMI)

    def test_overflow_sets_status(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        need(v.pmu.caps.has_global_status, "global status register")
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=False)
        v.retire(QUIET_EVENT, 1)
        status_msr = next(h for h in v.msr_table.values() if h.klass == "global_status")
        assert v.rdmsr(status_msr.msr) & (1 << pmc.idx)

    def test_status_bit_clears_on_ack(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        need(v.pmu.caps.has_global_status, "global status register")
        drv = machine_of(v).guest_driver(v)
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=False)
        v.retire(QUIET_EVENT, 1)
        bit = 1 << pmc.idx
        assert drv.read_status() & bit
        drv.ack_status(bit)
        assert not drv.read_status() & bit

    def test_disable_all_stops_counting(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        drv = machine_of(v).guest_driver(v)  # one driver: it tracks what it enabled
        pmc = gp(v)[0]
        drv.disable_all()
        drv.write_counter(pmc.idx, 0)
        drv.program_gp(pmc.idx, drv.gp_key(QUIET_EVENT), usr=True, os=True)
        drv.enable_all()
        v.retire(QUIET_EVENT, 10)
        assert pmc.value == 10
        drv.disable_all()
        v.retire(QUIET_EVENT, 10)
        assert pmc.value == 10

    def test_no_pmi_without_interrupt_bit(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        v.wrmsr(LVTPC, LVTPC_NMI)
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=False)
        v.retire(QUIET_EVENT, 5)
        assert v.pmis == []
        assert pmc.value == 4

    def test_lvtpc_masking_follows_caps(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        v.wrmsr(LVTPC, LVTPC_NMI)
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=True)
        v.retire(QUIET_EVENT, 1)
        assert len(v.pmis) == 1
        masked = bool(v.rdmsr(LVTPC) & (1 << 16))
        assert masked == v.pmu.caps.lvtpc_masks_on_pmi
        pmc.write(pmc.mask)
        v.retire(QUIET_EVENT, 1)
        assert len(v.pmis) == (1 if masked else 2)
        assert v.pmis_dropped == (1 if masked else 0)

    def test_masked_lvtpc_drops_pmi(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        assert v.rdmsr(LVTPC) & (1 << 16), "LVTPC is masked at RESET"
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=True)
        v.retire(QUIET_EVENT, 1)
        assert v.pmis == []
        assert v.pmis_dropped == 1


class TestEventFilter:
    def test_deny_stops_only_the_denied_event(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        need(len(gp(v)) >= 2, "two GP counters")
        g0, g1 = gp(v)[:2]  # the first two GP counters by index, whatever holes lie between
        drv = machine_of(v).guest_driver(v)
        sel, umask = drv.gp_key("cycles")
        machine_of(v).set_event_filter("deny", [sel | (umask << 8)])
        drv.disable_all()
        drv.program_gp(g0.idx, drv.gp_key("cycles"), usr=True, os=True)
        drv.program_gp(g1.idx, drv.gp_key("branches"), usr=True, os=True)
        drv.enable_all()
        v.retire("cycles", 100)
        v.retire("branches", 7)
        assert (g0.value, g1.value) == (0, 7)

    def test_allow_lets_only_the_listed_event(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        need(len(gp(v)) >= 2, "two GP counters")
        g0, g1 = gp(v)[:2]  # the first two GP counters by index, whatever holes lie between
        drv = machine_of(v).guest_driver(v)
        sel, umask = drv.gp_key("branches")
        drv.disable_all()
        drv.program_gp(g0.idx, drv.gp_key("cycles"), usr=True, os=True)
        drv.program_gp(g1.idx, drv.gp_key("branches"), usr=True, os=True)
        drv.enable_all()
        machine_of(v).set_event_filter("allow", [sel | (umask << 8)])
        v.retire("cycles", 100)
        v.retire("branches", 7)
        assert (g0.value, g1.value) == (0, 7)
        machine_of(v).clear_event_filter()
        v.retire("cycles", 3)
        assert g0.value == 3

    def test_fixed_counters_follow_the_bitmap_only(self, vpmu_machine: MachineFactory) -> None:
        v = vcpu_of(vpmu_machine)
        need(len(fixed(v)) >= 2, "two fixed counters")
        f0, f1 = fixed(v)[:2]
        assert f0.key is not None and f1.key is not None
        raw = [f0.key[0] | (f0.key[1] << 8), f1.key[0] | (f1.key[1] << 8)]
        machine_of(v).set_event_filter("allow", raw, fixed_counter_bitmap=0b10)
        arm(v, f0, 0, intr=False)
        arm(v, f1, 0, intr=False)
        v.retire(f0.key, 10)
        v.retire(f1.key, 10)
        assert (f0.value, f1.value) == (0, 10)


EDGE_VALUES = (0, 1, 0x400, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 47, 1 << 63, MASK64)


def _ops() -> st.SearchStrategy[list[tuple[str, int, int]]]:
    """Guest operations. A negative MSR ``-1 - i`` means "the i-th MSR this vCPU answers".

    Drawing most MSRs from the vCPU's own table (resolved in :func:`apply`) keeps the
    fuzzing on registers that exist, for any backend, whatever MSR range it uses;
    the known Intel/AMD indices and raw 32-bit indices cover the faulting side.
    """
    known = (
        st.sampled_from([0x834, 0xC1, 0xC2, 0x186, 0x187, 0x38D, 0x38E, 0x38F, 0x390, 0x391])
        | st.integers(0xC0010000, 0xC001020F)
        | st.integers(0xC0000300, 0xC0000303)
        | st.integers(0x300, 0x400)
        | st.integers(0x4C1, 0x4D0)
    )
    other = st.one_of(known, st.integers(0, 0xFFFF_FFFF))
    # hypothesis does not split one_of evenly; a drawn selector does: 7 in 10 from the table
    msr = st.tuples(st.integers(0, 9), st.integers(0, 4095), other).map(
        lambda t: -1 - t[1] if t[0] < 7 else t[2]
    )
    value = st.one_of(
        st.integers(0, MASK64),
        st.sampled_from([*EDGE_VALUES, 0x4300C0, 0x53003C]),
    )
    op = st.sampled_from(["wrmsr", "rdmsr", "rdpmc", "retire"])
    return st.lists(st.tuples(op, msr, value), max_size=40)


def apply(v: Vcpu, ops: list[tuple[str, int, int]]) -> list[Any]:
    """Run ops; return what the guest observed (values or the fault), for comparisons."""
    seen: list[Any] = []
    events = sorted(v.pmu.events)
    table = sorted(v.msr_table) or [0]
    for op, raw, value in ops:
        msr = table[(-1 - raw) % len(table)] if raw < 0 and op != "rdpmc" else raw
        if op == "rdpmc" and raw < 0:
            msr = (-1 - raw) % 64  # small ECX values, where counters live
        try:
            if op == "wrmsr":
                v.wrmsr(msr, value)
                seen.append(None)
            elif op == "rdmsr":
                seen.append(v.rdmsr(msr))
            elif op == "rdpmc":
                seen.append(v.rdpmc(msr))
            else:
                v.retire(events[msr % len(events)], value % 5000, cpl=3 * (value & 1))
                seen.append(None)
        except GuestFault as exc:
            seen.append(("#GP", exc.vector))
    seen.append(len(v.pmis))
    seen.append([p.value for p in v.counters.values()])
    return seen


class TestAnyAccessSequence:
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops=_ops())
    def test_only_guest_faults_and_counters_stay_in_width(
        self, vpmu_machine: MachineFactory, ops: list[tuple[str, int, int]]
    ) -> None:
        v = vcpu_of(vpmu_machine)
        apply(v, ops)  # anything but GuestFault propagates and fails the test
        for pmc in v.counters.values():
            assert 0 <= pmc.value <= pmc.mask, pmc


def scribble(v: Vcpu) -> None:
    """Write edge values to every MSR the vCPU answers (faults are answers too)."""
    for msr in list(v.msr_table):
        for value in EDGE_VALUES:
            try:
                v.wrmsr(msr, value)
                v.rdmsr(msr)
            except GuestFault:
                pass


def observe(v: Vcpu) -> dict[int, int | str]:
    """Every MSR's guest-visible value (or its fault), read in table order."""
    seen: dict[int, int | str] = {}
    for msr in sorted(v.msr_table):
        try:
            seen[msr] = v.rdmsr(msr)
        except GuestFault as exc:
            seen[msr] = f"#{exc.vector}"
    return seen


class TestAnyMsrValue:
    def test_every_msr_takes_edge_values(self, vpmu_machine: MachineFactory) -> None:
        """Deterministic companion of the hypothesis test: every MSR, every edge value."""
        v = vcpu_of(vpmu_machine)
        scribble(v)  # anything but GuestFault propagates and fails the test
        for pmc in v.counters.values():
            assert 0 <= pmc.value <= pmc.mask, pmc


class TestSnapshot:
    def test_restore_carries_every_register(self, vpmu_machine: MachineFactory) -> None:
        """After scribbling over every MSR, a restored copy reads and counts the same.

        The host is made big enough to back every guest counter: which counters a
        contended host schedules after a restore is the host's choice (a migrated
        VM lands on another host), not guest state a snapshot carries.
        """
        roomy = {"gp_counters": 32, "fixed_counters": 4}
        a = vcpu_of(vpmu_machine, host=roomy)
        drv = machine_of(a).guest_driver(a)
        scribble(a)
        drv.disable_all()
        for pmc in gp(a)[:2]:
            drv.program_gp(pmc.idx, drv.gp_key(QUIET_EVENT), usr=True, os=False, intr=True)
            drv.write_counter(pmc.idx, 0x1234)
        drv.enable_all()
        b = vcpu_of(vpmu_machine, host=roomy)
        b.restore(a.snapshot().model_dump_json())
        assert observe(b) == observe(a)
        a.retire(QUIET_EVENT, 7, cpl=3)
        b.retire(QUIET_EVENT, 7, cpl=3)
        assert [p.value for p in b.counters.values()] == [p.value for p in a.counters.values()]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(prefix=_ops(), suffix=_ops())
    def test_restore_is_differential(
        self,
        vpmu_machine: MachineFactory,
        prefix: list[tuple[str, int, int]],
        suffix: list[tuple[str, int, int]],
    ) -> None:
        a = vcpu_of(vpmu_machine)
        apply(a, prefix)
        text = a.snapshot().model_dump_json()
        b = vcpu_of(vpmu_machine)
        b.restore(text)
        assert b.snapshot().model_dump_json() == text
        pmis_a, pmis_b = len(a.pmis), len(b.pmis)
        ra, rb = apply(a, suffix), apply(b, suffix)
        assert ra[:-2] == rb[:-2]
        assert ra[-1] == rb[-1]
        assert ra[-2] - pmis_a == rb[-2] - pmis_b
        assert a.snapshot() == b.snapshot()

    def test_restore_refuses_another_shape(self, vpmu_machine: MachineFactory) -> None:
        from ..errors import SnapshotError

        v = vcpu_of(vpmu_machine)
        snap = v.snapshot().model_dump()
        snap["shape"]["gp_counters"] = snap["shape"]["gp_counters"] + 1
        with pytest.raises(SnapshotError, match="gp_counters"):
            vcpu_of(vpmu_machine).restore(snap)
        snap = v.snapshot().model_dump()
        snap["backend"] = "no-such-backend"
        with pytest.raises(SnapshotError, match="no-such-backend"):
            vcpu_of(vpmu_machine).restore(snap)
