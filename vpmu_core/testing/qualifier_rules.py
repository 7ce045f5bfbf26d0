"""Conformance rules of the event-select qualifiers: CMASK, INV, EDGE, HostOnly/GuestOnly.

A backend that lists a qualifier among perf's format terms (``Caps.event_format``:
``cmask``, ``inv``, ``edge``) says a guest can program it, so its counters must count
what qualifiers.py's documented spread gives; the suite checks them against the
closed forms of workloads/qualified.py, a formulation independent of the counting
code. Events are retired as branches, which no guest access retires on its own.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..counters import Pmc
from ..errors import GuestFault
from ..msr import EVENTSEL
from ..vcpu import Vcpu
from ..workloads.qualified import cycles_meeting
from .plugin import MachineFactory
from .support import gp, machine_of, need, vcpu_of

EVENT = "branches"
HOST_ONLY = 1 << 41  # AMD PERF_CTL: count in host mode only
GUEST_ONLY = 1 << 40  # AMD PERF_CTL: count in guest mode only
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def needs_terms(v: Vcpu, *terms: str) -> None:
    """Skip unless the PMU lets perf program these qualifiers, and counts ``EVENT``."""
    have = dict(v.pmu.caps.event_format)
    missing = [t for t in terms if t not in have]
    need(not missing, f"event-select qualifier terms {', '.join(missing)} (Caps.event_format)")
    need(EVENT in v.pmu.events, f"a GP event {EVENT!r}")
    need(len(gp(v)) >= 2, "two GP counters")


def program(v: Vcpu, pmc: Pmc, terms: str) -> None:
    """``pmc`` on ``EVENT`` with perf's qualifier ``terms``, OS+USR, at 0, enabled."""
    drv = machine_of(v).guest_driver(v)
    sel, umask = drv.gp_key(EVENT)
    spec = drv.event(f"cpu/event={sel:#x},umask={umask:#x},{terms}/")
    drv.disable_all()
    drv.write_counter(pmc.idx, 0)
    drv.program_gp(pmc.idx, spec, usr=True, os=True)
    drv.enable_all()


def read(v: Vcpu, pmc: Pmc) -> int:
    return machine_of(v).guest_driver(v).read_counter(pmc.idx)


spreads = st.integers(1, 64).flatmap(lambda c: st.tuples(st.integers(0, 6 * c), st.just(c)))
thresholds = st.integers(1, 7)


def case(make: MachineFactory, spread: tuple[int, int], *terms: str) -> tuple[Vcpu, int, int]:
    """A fresh vCPU that can program ``terms``, and the (events, cycles) to retire."""
    v = vcpu_of(make)
    needs_terms(v, *terms)
    return v, *spread


class TestQualifiers:
    @SETTINGS
    @given(spread=spreads, cmask=thresholds)
    def test_cmask_counts_cycles_at_threshold(
        self, vpmu_machine: MachineFactory, spread: tuple[int, int], cmask: int
    ) -> None:
        """CMASK = c adds 1 per cycle with >= c events: never more than the cycles, nor n/c."""
        v, n, cycles = case(vpmu_machine, spread, "cmask")
        pmc = gp(v)[0]
        program(v, pmc, f"cmask={cmask}")
        v.retire(EVENT, n, 0, cycles)
        got = read(v, pmc)
        assert got == cycles_meeting(n, cycles, cmask, False)
        assert got <= min(cycles, n // cmask)

    @SETTINGS
    @given(spread=spreads, cmask=thresholds)
    def test_inv_complements_cmask(
        self, vpmu_machine: MachineFactory, spread: tuple[int, int], cmask: int
    ) -> None:
        """INV with CMASK = c counts exactly the cycles the same CMASK does not."""
        v, n, cycles = case(vpmu_machine, spread, "cmask", "inv")
        plain, inv = gp(v)[:2]
        program(v, plain, f"cmask={cmask}")
        program(v, inv, f"inv,cmask={cmask}")
        v.retire(EVENT, n, 3, cycles)
        assert read(v, plain) + read(v, inv) == cycles
        assert read(v, inv) == cycles_meeting(n, cycles, cmask, True)

    @SETTINGS
    @given(spread=spreads, inv=st.booleans())
    def test_cmask_zero_counts_every_event(
        self, vpmu_machine: MachineFactory, spread: tuple[int, int], inv: bool
    ) -> None:
        """CMASK = 0 is plain counting, INV or not (it inverts a comparison CMASK = 0 turns off)."""
        v, n, cycles = case(vpmu_machine, spread, "cmask", "inv")
        pmc = gp(v)[0]
        program(v, pmc, "inv,cmask=0" if inv else "cmask=0")
        v.retire(EVENT, n, 0, cycles)
        assert read(v, pmc) == n

    def test_edge_counts_rising_edges(self, vpmu_machine: MachineFactory) -> None:
        """CMASK = 2 EDGE: 7 over 3 cycles is 3, 2, 2 (one rise); 1 over 2 is 1, 0 (falls);
        4 over 2 is 2, 2 (a second rise); 5 over 2 is 3, 2 (still high): 2 edges, where
        CMASK = 2 alone counts 3 + 0 + 2 + 2 = 7 cycles."""
        v = vcpu_of(vpmu_machine)
        needs_terms(v, "cmask", "edge")
        edge, level = gp(v)[:2]
        program(v, edge, "edge,cmask=2")
        program(v, level, "cmask=2")
        for n, cycles in ((7, 3), (1, 2), (4, 2), (5, 2)):
            v.retire(EVENT, n, 0, cycles)
        assert (read(v, edge), read(v, level)) == (2, 7)

    def test_edge_alone_detects_any_event(self, vpmu_machine: MachineFactory) -> None:
        """EDGE with CMASK = 0: a rise of ">= 1 event a cycle"; 3 over 5 cycles is 1, 1, 1, 0,
        0, so two such calls are two edges and the idle call between them none."""
        v = vcpu_of(vpmu_machine)
        needs_terms(v, "edge")
        pmc = gp(v)[0]
        program(v, pmc, "edge")
        for n, cycles in ((3, 5), (0, 4), (3, 5)):
            v.retire(EVENT, n, 0, cycles)
        assert read(v, pmc) == 2

    def test_event_select_write_restarts_edge_detection(self, vpmu_machine: MachineFactory) -> None:
        """After 4 over 2 cycles the condition (>= 2) is high: another 4 over 2 adds no edge,
        but a write of a new event select restarts the detector deasserted (the host
        event is created again), so the same call then adds one."""
        v = vcpu_of(vpmu_machine)
        needs_terms(v, "cmask", "edge")
        pmc = gp(v)[0]
        program(v, pmc, "edge,cmask=2")
        v.retire(EVENT, 4, 0, 2)
        v.retire(EVENT, 4, 0, 2)
        assert read(v, pmc) == 1
        drv = machine_of(v).guest_driver(v)
        sel, umask = drv.gp_key(EVENT)
        spec = drv.event(f"cpu/event={sel:#x},umask={umask:#x},edge,cmask=2/")
        drv.disable_all()
        drv.stop_gp(pmc.idx, spec, usr=True, os=True)  # two writes: EN clear, EN set
        drv.start_gp(pmc.idx, spec, usr=True, os=True)
        drv.enable_all()
        v.retire(EVENT, 4, 0, 2)
        assert read(v, pmc) == 2

    def test_host_and_guest_only_bits_are_dropped(self, vpmu_machine: MachineFactory) -> None:
        """Where reserved event-select bits are cleared on write (KVM's AMD reserved mask
        takes in HostOnly and GuestOnly), a guest writing them gets no #GP, reads them
        back 0, and its counter counts the guest's events exactly as without them."""
        v = vcpu_of(vpmu_machine)
        caps = v.pmu.caps
        need(not caps.reserved_eventsel_faults, "reserved event-select bits dropped, not #GP")
        need(
            not (HOST_ONLY | GUEST_ONLY) & caps.raw_event_mask,
            "HostOnly/GuestOnly outside perf's raw event mask",
        )
        needs_terms(v)
        msr = {h.counter: m for m, h in v.msr_table.items() if h.klass == EVENTSEL}
        for extra in (HOST_ONLY, GUEST_ONLY, HOST_ONLY | GUEST_ONLY):
            pmc = gp(v)[0]
            program(v, pmc, "cmask=0")
            sel = v.rdmsr(msr[pmc.idx])
            try:
                v.wrmsr(msr[pmc.idx], sel | extra)
            except GuestFault as exc:  # pragma: no cover - the failure being tested
                raise AssertionError(f"#GP writing HostOnly/GuestOnly {extra:#x}") from exc
            assert v.rdmsr(msr[pmc.idx]) == sel
            v.retire(EVENT, 1000, 3)
            v.retire(EVENT, 10, 0)
            assert read(v, pmc) == 1010
