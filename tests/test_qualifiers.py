"""CMASK, INV and EDGE on both vendors, and the spread of retired events over cycles.

The rules (vpmu_core/qualifiers.py, docs/guide.md "Event-select qualifiers"): n events
over C cycles put ceil(n/C) on the first n % C cycles and floor(n/C) on the rest;
CMASK = c counts cycles with >= c events, INV cycles with < c (INV is ignored when
CMASK = 0), EDGE the deasserted-to-asserted transitions, its state carried across
calls. Expected values are worked out by hand from those rules, not from the code.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vpmu_core as vpmu
from vpmu_core.qualifiers import Qualifier, qualifier_of

USR, OS, EDGE, EN, INV = 1 << 16, 1 << 17, 1 << 18, 1 << 22, 1 << 23

# (backend config, PERFEVTSEL/PERF_CTL of counter i, counter MSR of counter i, branches)
VENDORS: dict[str, tuple[dict[str, Any], Any, Any, int]] = {
    "intel": (
        {"backend": "intel", "version": 5, "gp_counters": 8, "fixed_counters": 4},
        lambda i: 0x186 + i,
        lambda i: 0x4C1 + i,
        0xC4,
    ),
    "amd": (
        {"backend": "amd", "generation": "perfmon-v2"},
        lambda i: 0xC0010200 + 2 * i,
        lambda i: 0xC0010201 + 2 * i,
        0xC2,
    ),
}


def evtsel(event: int, cmask: int = 0, inv: bool = False, edge: bool = False) -> int:
    return event | USR | OS | EN | (cmask << 24) | (INV if inv else 0) | (EDGE if edge else 0)


def _strategy(name: str) -> dict[str, Any]:
    """The RFC's mediated mode lets a v5 guest (GLOBAL_STATUS_SET) run; 6.20's caps it at v2."""
    return {"name": name, "mode": "rfc"} if name == "mediated" else {"name": name}


def vcpu(vendor: str, strategy: str = "emulated") -> Any:
    pmu = VENDORS[vendor][0]
    return vpmu.Machine.from_dict({"pmu": pmu, "strategy": _strategy(strategy)}).vcpus[0]


def program(cpu: Any, vendor: str, i: int, value: int) -> None:
    _, sel, ctr, _ = VENDORS[vendor]
    cpu.wrmsr(ctr(i), 0)
    cpu.wrmsr(sel(i), value)


def read(cpu: Any, vendor: str, i: int) -> int:
    return int(cpu.rdmsr(VENDORS[vendor][2](i)))


# ------------------------------------------------------------------ the decode
def test_decode_reads_cmask_inv_and_edge_and_ignores_inv_without_a_mask() -> None:
    assert qualifier_of(0x4300C0) is None
    assert qualifier_of(0x4300C0 | INV) is None  # INV alone: no comparison to invert
    q = qualifier_of(0x4300C0 | (2 << 24) | INV)
    assert q is not None and (q.threshold, q.invert, q.edge) == (2, True, False)
    q = qualifier_of(0x4300C0 | EDGE | INV)  # EDGE alone: ">= 1 event", INV still ignored
    assert q is not None and (q.threshold, q.invert, q.edge) == (1, False, True)
    q = qualifier_of(0x4300C0 | (0xFF << 24) | EDGE)
    assert q is not None and (q.threshold, q.invert, q.edge) == (255, False, True)


# -------------------------------------------------------- exact values, both
# 10 events over 4 cycles: 3, 3, 2, 2. 3 events over 10 cycles: 1, 1, 1, then 7 zeros.
EXACT = [
    # cmask, inv, edge, n, cycles, expected
    (0, False, False, 10, 4, 10),
    (0, True, False, 10, 4, 10),
    (2, False, False, 10, 4, 4),
    (3, False, False, 10, 4, 2),
    (3, True, False, 10, 4, 2),
    (4, False, False, 10, 4, 0),
    (4, True, False, 10, 4, 4),
    (1, False, False, 3, 10, 3),
    (1, True, False, 3, 10, 7),
    (1, False, True, 3, 10, 1),
    (0, False, True, 3, 10, 1),
    (1, True, True, 3, 10, 1),
    (2, False, True, 10, 4, 1),
    (3, True, True, 10, 4, 1),
    (0, False, False, 5, None, 5),
    (1, False, False, 5, None, 5),
    (2, False, False, 5, None, 0),
    (2, True, False, 5, None, 5),
    (255, True, False, 5, None, 5),
    (1, True, False, 0, 6, 6),  # idle cycles: only INV sees them
    (1, False, False, 0, 6, 0),
]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize(("cmask", "inv", "edge", "n", "cycles", "want"), EXACT)
def test_a_qualified_counter_counts_exactly_the_cycles_the_spread_gives(
    vendor: str, cmask: int, inv: bool, edge: bool, n: int, cycles: int | None, want: int
) -> None:
    cpu = vcpu(vendor)
    branches = VENDORS[vendor][3]
    program(cpu, vendor, 0, evtsel(branches, cmask, inv, edge))
    program(cpu, vendor, 1, evtsel(branches))
    cpu.retire("branches", n, 0, cycles=cycles)
    assert read(cpu, vendor, 0) == want
    assert read(cpu, vendor, 1) == n  # the plain counter beside it is untouched


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_edge_state_carries_across_calls(vendor: str) -> None:
    cpu = vcpu(vendor)
    program(cpu, vendor, 0, evtsel(VENDORS[vendor][3], 1, edge=True))
    cpu.retire("branches", 3, 0, cycles=10)  # 1,1,1,0,...: one edge, ends deasserted
    cpu.retire("branches", 3, 0, cycles=10)  # a new burst: a second edge
    assert read(cpu, vendor, 0) == 2
    cpu.retire("branches", 10, 0, cycles=10)  # asserted from the first cycle: edge 3
    cpu.retire("branches", 10, 0, cycles=10)  # still asserted: no edge
    assert read(cpu, vendor, 0) == 3
    # a new event select restarts the detector deasserted
    _, sel, _, _ = VENDORS[vendor]
    cpu.wrmsr(sel(0), evtsel(VENDORS[vendor][3], 1, edge=True) | (1 << 20))
    cpu.retire("branches", 10, 0, cycles=10)
    assert read(cpu, vendor, 0) == 4


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_cpl_filtered_qualified_counter_never_sees_the_other_level(vendor: str) -> None:
    cpu = vcpu(vendor)
    branches = VENDORS[vendor][3]
    program(cpu, vendor, 0, evtsel(branches, 1, inv=True) & ~OS)  # user only, INV < 1
    cpu.retire("branches", 0, 0, cycles=100)  # kernel idle cycles: not its level
    cpu.retire("branches", 0, 3, cycles=7)
    assert read(cpu, vendor, 0) == 7


# ------------------------------------------------ what KVM counts in software
@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_an_emulated_instruction_adds_one_to_a_qualified_counter_as_kvm_does(vendor: str) -> None:
    # kvm_pmu_trigger_event matches event select + unit mask only: CMASK = 2 does not
    # stop KVM's +1 for the WRMSR it completed, while the hardware-retired
    # instructions (one per cycle by default) never reach two in a cycle.
    cpu = vcpu(vendor)
    program(cpu, vendor, 0, evtsel(0xC0, 2))  # the enabling WRMSR exits: +1
    cpu.retire("instructions", 1000)
    assert read(cpu, vendor, 0) == 1  # RDMSR reads before its own instruction counts
    assert read(cpu, vendor, 0) == 2
    cpu.retire("instructions", 1000, 0, cycles=400)  # 3,3,...,2: every cycle >= 2
    assert read(cpu, vendor, 0) == 3 + 400


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_an_access_that_does_not_exit_is_one_hardware_instruction_in_one_cycle(
    vendor: str,
) -> None:
    cpu = vcpu(vendor, "mediated")  # counter MSRs pass through, event selects exit
    program(cpu, vendor, 0, evtsel(0xC0, 1))
    program(cpu, vendor, 1, evtsel(0xC0, 2))
    program(cpu, vendor, 2, evtsel(0xC0, 2, inv=True))
    base = [read(cpu, vendor, i) for i in range(3)]
    after = [read(cpu, vendor, i) for i in range(3)]
    # three passed-through reads between the two samples of each counter
    assert [a - b for a, b in zip(after, base, strict=True)] == [3, 0, 3]


# ------------------------------------------------------------ API misuse
@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize("cpl", [-1, 4, 7])
def test_retire_refuses_a_cpl_outside_0_to_3(vendor: str, cpl: int) -> None:
    cpu = vcpu(vendor)
    with pytest.raises(ValueError, match="cpl"):
        cpu.retire("instructions", 1, cpl)
    program(cpu, vendor, 0, evtsel(0xC0))  # with a counter too, and after a hit
    cpu.retire("instructions", 1, 3)
    with pytest.raises(ValueError, match="cpl"):
        cpu.retire("instructions", 1, cpl=cpl)
    with pytest.raises(ValueError, match="cpl"):
        cpu.counting("instructions", cpl)


@pytest.mark.parametrize(("n", "cycles"), [(5, 0), (1, -1), (0, -3)])
def test_retire_refuses_events_in_no_cycle(n: int, cycles: int) -> None:
    cpu = vcpu("intel")
    with pytest.raises(ValueError, match="cycles"):
        cpu.retire("branches", n, 0, cycles=cycles)


def test_no_events_in_no_cycles_is_nothing() -> None:
    cpu = vcpu("intel")
    program(cpu, "intel", 0, evtsel(0xC4, 1, inv=True))
    cpu.retire("branches", 0, 0, cycles=0)
    assert read(cpu, "intel", 0) == 0


# ------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(
    c=st.integers(1, 255),
    n=st.integers(0, 10**7),
    cycles=st.integers(1, 10**7),
    before=st.booleans(),
)
def test_qualifier_bounds(c: int, n: int, cycles: int, before: bool) -> None:
    """CMASK=c never exceeds the cycles nor floor(n / c) (each counted cycle holds >= c
    of the n events); INV counts exactly the other cycles; EDGE counts asserted cycles
    only, at most ceil(cycles / 2) of them, and at most 1 per call (the spread is
    monotone within a call)."""

    class State:
        edge_state = before

    level = Qualifier(c, False, False).count(State(), n, cycles)
    inverse = Qualifier(c, True, False).count(State(), n, cycles)
    assert level <= cycles and level <= n // c
    assert level + inverse == cycles
    for invert, asserted in ((False, level), (True, inverse)):
        edges = Qualifier(c, invert, True).count(State(), n, cycles)
        assert edges <= asserted and edges <= (cycles + 1) // 2 and edges <= 1


@settings(max_examples=60, deadline=None)
@given(
    vendor=st.sampled_from(sorted(VENDORS)),
    c=st.integers(1, 8),
    calls=st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 2000)), min_size=1, max_size=6),
)
def test_vendor_counters_keep_the_bounds_over_many_calls(
    vendor: str, c: int, calls: list[tuple[int, int]]
) -> None:
    cpu = vcpu(vendor)
    branches = VENDORS[vendor][3]
    program(cpu, vendor, 0, evtsel(branches, c))
    program(cpu, vendor, 1, evtsel(branches, c, inv=True))
    program(cpu, vendor, 2, evtsel(branches, c, edge=True))
    for n, cycles in calls:
        cpu.retire("branches", n, 0, cycles=cycles)
    level, inverse, edges = (read(cpu, vendor, i) for i in range(3))
    total_cycles = sum(cy for _, cy in calls)
    assert level + inverse == total_cycles
    assert level <= sum(n // c for n, _ in calls) <= sum(n for n, _ in calls) // c
    assert edges <= level and edges <= len(calls) and edges <= (total_cycles + 1) // 2


def _split(n: int, cycles: int, k: int) -> tuple[int, int]:
    """The events the one-call spread puts on its first ``k`` cycles, and on the rest."""
    q, r = divmod(n, cycles)
    first = k * q + min(k, r)
    return first, n - first


QUALIFIED = [
    (0, False, False),
    (2, False, False),
    (2, True, False),
    (2, False, True),
    (2, True, True),
    (0, False, True),
]


@settings(max_examples=80, deadline=None)
@given(
    vendor=st.sampled_from(sorted(VENDORS)),
    n=st.integers(0, 5000),
    cycles=st.integers(1, 3000),
    cut=st.floats(0, 1),
    lead=st.integers(0, 6),
)
def test_two_calls_cut_at_a_cycle_boundary_equal_one(
    vendor: str, n: int, cycles: int, cut: float, lead: int
) -> None:
    k = min(cycles - 1, int(cut * cycles)) if cycles > 1 else 0
    first, rest = _split(n, cycles, k)
    branches = VENDORS[vendor][3]
    values = []
    for split in (False, True):
        cpu = vcpu(vendor)
        for i, (cmask, inv, edge) in enumerate(QUALIFIED):
            program(cpu, vendor, i, evtsel(branches, cmask, inv, edge))
        cpu.retire("branches", lead, 0, cycles=max(1, lead))  # some prior edge state
        if split and k:
            cpu.retire("branches", first, 0, cycles=k)
            cpu.retire("branches", rest, 0, cycles=cycles - k)
        else:
            cpu.retire("branches", n, 0, cycles=cycles)
        values.append([read(cpu, vendor, i) for i in range(len(QUALIFIED))])
    assert values[0] == values[1]


# --------------------------------------------------------- snapshot, restore
@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_restored_edge_detector_continues_as_the_original(vendor: str) -> None:
    cpu = vcpu(vendor)
    program(cpu, vendor, 0, evtsel(VENDORS[vendor][3], 1, edge=True))
    cpu.retire("branches", 10, 0, cycles=10)  # asserted at the end
    twin = vcpu(vendor)
    twin.restore(cpu.snapshot().model_dump_json())
    for c in (cpu, twin):
        c.retire("branches", 10, 0, cycles=10)  # no edge: still asserted
        assert read(c, vendor, 0) == 1
        c.retire("branches", 0, 0, cycles=5)
        c.retire("branches", 1, 0, cycles=1)
        assert read(c, vendor, 0) == 2


# ------------------------------------------------- AMD HostOnly / GuestOnly
GUESTONLY, HOSTONLY = 1 << 40, 1 << 41


@pytest.mark.parametrize("strategy", ["emulated", "mediated"])
@pytest.mark.parametrize("bits", [0, HOSTONLY, GUESTONLY, HOSTONLY | GUESTONLY])
@pytest.mark.parametrize(
    ("cmask", "inv", "edge", "want"),
    [(0, False, False, 10), (3, False, False, 2), (3, True, False, 2), (2, False, True, 1)],
)
def test_amd_host_and_guest_only_change_nothing_a_guest_counts(
    strategy: str, bits: int, cmask: int, inv: bool, edge: bool, want: int
) -> None:
    """spec/amd-and-topdown.md §2.2: KVM's reserved mask 0xFFFFFFF000280000 holds bits
    40/41 and a guest write clears them (legacy and mediated vPMU alike; the mediated
    PMU then forces GuestOnly in the hardware select itself). A guest's counter counts
    in guest mode -- the only mode it lives in -- whatever it asked for."""
    cpu = vcpu("amd", strategy)
    value = evtsel(0xC2, cmask, inv, edge) | bits
    program(cpu, "amd", 0, value)
    assert cpu.rdmsr(0xC0010200) == value & ~(HOSTONLY | GUESTONLY)
    cpu.retire("branches", 10, 3, cycles=4)
    assert read(cpu, "amd", 0) == want


# ------------------------------------------------- profile cycles (trace replay)
@pytest.mark.parametrize("chunks", [[100_000], [1, 999, 33_333, 65_667], [50_000, 50_000]])
def test_a_profile_run_counts_the_cycles_it_took_however_it_is_cut(chunks: list[int]) -> None:
    """specint retires 1.6 instructions per user cycle (95% of cycles): every user cycle
    retires 1 or 2, and 100,000 cycles hold 95,000 user cycles and 152,000 user
    instructions, so 57,000 cycles with 2 (CMASK = 2) and 38,000 with 1 (INV)."""
    from pathlib import Path

    from vpmu_core.machine import Machine
    from vpmu_core.workloads.trace import Trace

    root = Path(__file__).resolve().parent.parent
    m = Machine.from_toml(root / "configs" / "trace-example.toml")
    lines = [
        "wrmsr 0x4c1 0",
        "wrmsr 0x4c2 0",
        f"wrmsr 0x186 {evtsel(0xC0, 2) & ~OS:#x}",  # user only: the trace's own
        f"wrmsr 0x187 {evtsel(0xC0, 2, inv=True) & ~OS:#x}",  # CPL0 accesses do not count
        *(f"run {c} cycles" for c in chunks),
    ]
    cfg = m.config.workload.model_copy(update={"path": None, "text": "\n".join(lines)})
    out = Trace(cfg, m).run()
    assert out.extra["faults"] == []
    cpu = m.vcpus[0]
    assert (cpu.rdmsr(0x4C1), cpu.rdmsr(0x4C2)) == (57_000, 38_000)


def test_a_profile_run_retires_each_event_once() -> None:
    """A plain user instructions counter over 100,000 specint cycles reads the profile's
    152,000 (an event with both a user and a kernel rate is retired once, not twice)."""
    from pathlib import Path

    from vpmu_core.machine import Machine
    from vpmu_core.workloads.trace import Trace

    root = Path(__file__).resolve().parent.parent
    m = Machine.from_toml(root / "configs" / "trace-example.toml")
    text = f"wrmsr 0x4c1 0\nwrmsr 0x186 {evtsel(0xC0) & ~OS:#x}\nrun 100000 cycles"
    Trace(m.config.workload.model_copy(update={"path": None, "text": text}), m).run()
    assert m.vcpus[0].rdmsr(0x4C1) == 152_000
