"""The conformance tests. Each rule a backend must keep, with the capability it needs.

Every test takes ``vpmu_config`` (a config dict, parametrized by the plugin over
the installed backends' conformance configs) and builds its own machines, so a
hypothesis test can build one per example.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..counters import FIXED_BASE, Pmc
from ..errors import GuestFault
from ..machine import Machine
from ..msr import COUNTER, MASK64
from ..plugins import default_manager
from ..vcpu import Vcpu

__all__ = [
    "TestAnyAccessSequence",
    "TestCounterWrites",
    "TestEventFilter",
    "TestMsrMap",
    "TestOverflow",
    "TestSnapshot",
]

LVTPC = 0x834
LVTPC_NMI = 0x400
# An event no access retires on its own (the WRMSR/RDPMC instructions would
# disturb an "instructions" counter).
QUIET_EVENT = "cycles"


def build(config: dict[str, Any], **top: Any) -> Machine:
    cfg = copy.deepcopy(config)
    cfg.update(top)
    return Machine.from_dict(cfg, default_manager())


def vcpu_of(config: dict[str, Any], **top: Any) -> Vcpu:
    return build(config, **top).vcpus[0]


def need(condition: bool, why: str) -> None:
    if not condition:
        pytest.skip(f"capability: {why}")


def gp(vcpu: Vcpu) -> list[Pmc]:
    return [p for p in vcpu.counters.values() if p.kind == "gp"]


def fixed(vcpu: Vcpu) -> list[Pmc]:
    return [p for p in vcpu.counters.values() if p.kind == "fixed"]


def arm(vcpu: Vcpu, pmc: Pmc, value: int, *, intr: bool) -> None:
    """Program ``pmc`` on QUIET_EVENT (OS+USR) at ``value`` and enable everything."""
    drv = vcpu.machine.backend.guest_driver(vcpu)
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
    def test_counters_agree_with_caps(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        caps = v.pmu.caps
        assert len(gp(v)) == caps.gp_counters
        assert len(fixed(v)) == caps.fixed_counters
        assert all(p.width == caps.gp_width for p in gp(v))
        assert all(p.width == caps.fixed_width for p in fixed(v))

    def test_cpuid_agrees_with_msr_map(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        shape = v.pmu.cpuid_shape()
        answering = {h.counter for h in v.msr_table.values() if h.klass == COUNTER}
        kinds = [v.counters[i].kind for i in answering if i is not None]
        assert shape["gp_counters"] == kinds.count("gp")
        assert shape["fixed_counters"] == kinds.count("fixed")
        if shape["gp_counters"]:
            assert shape["gp_width"] == v.pmu.caps.gp_width

    def test_unclaimed_msrs_fault(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        for msr in (0x0, 0x1, 0xFFFF_FFFF, 0x4000_0000, 0xC000_0400):
            assert msr not in v.msr_table
            with pytest.raises(GuestFault):
                v.rdmsr(msr)
            with pytest.raises(GuestFault):
                v.wrmsr(msr, 0)

    def test_rdpmc_reaches_every_counter(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        drv = v.machine.backend.guest_driver(v)
        for pmc in gp(v) + fixed(v):  # the vendor driver's counters; extensions have their own
            drv.write_counter(pmc.idx, 0x1234)
            assert drv.read_counter(pmc.idx) == 0x1234

    def test_pmu_msrs_fault_at_cpl3(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        v.cpl = 3
        for msr in list(v.msr_table)[:4]:
            with pytest.raises(GuestFault):
                v.rdmsr(msr)


class TestCounterWrites:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=st.integers(0, MASK64))
    def test_write_then_read_masks_to_width(self, vpmu_config: dict[str, Any], value: int) -> None:
        v = vcpu_of(vpmu_config)
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
        self, vpmu_config: dict[str, Any], period: int
    ) -> None:
        v = vcpu_of(vpmu_config)
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

    def test_overflow_sets_status(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        need(v.pmu.caps.has_global_status, "global status register")
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=False)
        v.retire(QUIET_EVENT, 1)
        status_msr = next(h for h in v.msr_table.values() if h.klass == "global_status")
        assert v.rdmsr(status_msr.msr) & (1 << pmc.idx)

    def test_no_pmi_without_interrupt_bit(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        v.wrmsr(LVTPC, LVTPC_NMI)
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=False)
        v.retire(QUIET_EVENT, 5)
        assert v.pmis == []
        assert pmc.value == 4

    def test_lvtpc_masking_follows_caps(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
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

    def test_masked_lvtpc_drops_pmi(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        assert v.rdmsr(LVTPC) & (1 << 16), "LVTPC is masked at RESET"
        pmc = gp(v)[0]
        arm(v, pmc, pmc.mask, intr=True)
        v.retire(QUIET_EVENT, 1)
        assert v.pmis == []
        assert v.pmis_dropped == 1


class TestEventFilter:
    def test_deny_stops_only_the_denied_event(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        need(len(gp(v)) >= 2, "two GP counters")
        drv = v.machine.backend.guest_driver(v)
        sel, umask = drv.gp_key("cycles")
        v.machine.set_event_filter("deny", [sel | (umask << 8)])
        drv.disable_all()
        drv.program_gp(0, drv.gp_key("cycles"), usr=True, os=True)
        drv.program_gp(1, drv.gp_key("branches"), usr=True, os=True)
        drv.enable_all()
        v.retire("cycles", 100)
        v.retire("branches", 7)
        assert gp(v)[0].value == 0
        assert gp(v)[1].value == 7

    def test_allow_lets_only_the_listed_event(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        need(len(gp(v)) >= 2, "two GP counters")
        drv = v.machine.backend.guest_driver(v)
        sel, umask = drv.gp_key("branches")
        drv.disable_all()
        drv.program_gp(0, drv.gp_key("cycles"), usr=True, os=True)
        drv.program_gp(1, drv.gp_key("branches"), usr=True, os=True)
        drv.enable_all()
        v.machine.set_event_filter("allow", [sel | (umask << 8)])
        v.retire("cycles", 100)
        v.retire("branches", 7)
        assert gp(v)[0].value == 0
        assert gp(v)[1].value == 7
        v.machine.clear_event_filter()
        v.retire("cycles", 3)
        assert gp(v)[0].value == 3

    def test_fixed_counters_follow_the_bitmap_only(self, vpmu_config: dict[str, Any]) -> None:
        v = vcpu_of(vpmu_config)
        need(len(fixed(v)) >= 2, "two fixed counters")
        f0, f1 = fixed(v)[:2]
        assert f0.key is not None and f1.key is not None
        raw = [f0.key[0] | (f0.key[1] << 8), f1.key[0] | (f1.key[1] << 8)]
        v.machine.set_event_filter("allow", raw, fixed_counter_bitmap=0b10)
        arm(v, f0, 0, intr=False)
        arm(v, f1, 0, intr=False)
        v.retire(f0.key, 10)
        v.retire(f1.key, 10)
        assert (f0.value, f1.value) == (0, 10)


def _ops() -> st.SearchStrategy[list[tuple[str, int, int]]]:
    msr = st.one_of(
        st.sampled_from([0x834, 0xC1, 0xC2, 0x186, 0x187, 0x38D, 0x38E, 0x38F, 0x390, 0x391])
        | st.integers(0xC0010000, 0xC001020F)
        | st.integers(0xC0000300, 0xC0000303)
        | st.integers(0x300, 0x400)
        | st.integers(0x4C1, 0x4D0),
        st.integers(0, 0xFFFF_FFFF),
    )
    value = st.one_of(
        st.integers(0, MASK64),
        st.sampled_from([0, 1, 0x400, 0x4300C0, 0x53003C, 0x8000_0000, MASK64, 0xFFFF_FFFF]),
    )
    op = st.sampled_from(["wrmsr", "rdmsr", "rdpmc", "retire"])
    return st.lists(st.tuples(op, msr, value), max_size=40)


def apply(v: Vcpu, ops: list[tuple[str, int, int]]) -> list[Any]:
    """Run ops; return what the guest observed (values or the fault), for comparisons."""
    seen: list[Any] = []
    events = sorted(v.pmu.events)
    for op, msr, value in ops:
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
        self, vpmu_config: dict[str, Any], ops: list[tuple[str, int, int]]
    ) -> None:
        v = vcpu_of(vpmu_config)
        apply(v, ops)  # anything but GuestFault propagates and fails the test
        for pmc in v.counters.values():
            assert 0 <= pmc.value <= pmc.mask, pmc


class TestSnapshot:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(prefix=_ops(), suffix=_ops())
    def test_restore_is_differential(
        self,
        vpmu_config: dict[str, Any],
        prefix: list[tuple[str, int, int]],
        suffix: list[tuple[str, int, int]],
    ) -> None:
        a = vcpu_of(vpmu_config)
        apply(a, prefix)
        text = a.snapshot().model_dump_json()
        b = vcpu_of(vpmu_config)
        b.restore(text)
        assert b.snapshot().model_dump_json() == text
        pmis_a, pmis_b = len(a.pmis), len(b.pmis)
        ra, rb = apply(a, suffix), apply(b, suffix)
        assert ra[:-2] == rb[:-2]
        assert ra[-1] == rb[-1]
        assert ra[-2] - pmis_a == rb[-2] - pmis_b
        assert a.snapshot() == b.snapshot()

    def test_restore_refuses_another_shape(self, vpmu_config: dict[str, Any]) -> None:
        from ..errors import SnapshotError

        v = vcpu_of(vpmu_config)
        snap = v.snapshot().model_dump()
        snap["shape"]["gp_counters"] = snap["shape"]["gp_counters"] + 1
        with pytest.raises(SnapshotError, match="gp_counters"):
            vcpu_of(vpmu_config).restore(snap)
        snap = v.snapshot().model_dump()
        snap["backend"] = "no-such-backend"
        with pytest.raises(SnapshotError, match="no-such-backend"):
            vcpu_of(vpmu_config).restore(snap)
