"""Intel topdown (pmu.topdown_metrics): PERF_METRICS over fixed counter 3 (spec §7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vpmu_intel.topdown import L1_EVENTS, L2_EVENTS

import vpmu_core as vpmu

PERF_METRICS = 0x329
FIXED_CTR3 = 0x30C
FIXED_CTR_CTRL = 0x38D
GLOBAL_STATUS = 0x38E
GLOBAL_CTRL = 0x38F
OVF_CTRL = 0x390
PERF_CAPABILITIES = 0x345
RDPMC_SLOTS = (1 << 30) | 3
RDPMC_METRICS = 1 << 29
EN_PERF_METRICS = 1 << 48
FIXED3_OS_USR = 0x3 << 12
FIXED3_PMI = 0x8 << 12
SPR = {"backend": "intel", "version": 5, "fixed_counters": 4}


def topdown_config(metrics: int, **pmu: Any) -> dict[str, Any]:
    """A Sapphire Rapids-class PMU with PERF_METRICS of ``metrics`` fields."""
    return {"pmu": {**SPR, "topdown_metrics": metrics, **pmu}}


@pytest.fixture
def build(plugins: vpmu.PluginManager) -> Any:
    def make(config: dict[str, Any]) -> vpmu.Machine:
        return vpmu.Machine.from_dict(config, plugins)

    return make


def topdown(build: Any, metrics: int = 4, ctrl: int = FIXED3_OS_USR, **pmu: Any) -> Any:
    """A vCPU running Linux's topdown setup: FIXED_CTR3 = 0, PERF_METRICS = 0, enabled."""
    cpu = build(topdown_config(metrics, **pmu)).vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(FIXED_CTR3, 0)
    cpu.wrmsr(PERF_METRICS, 0)
    cpu.wrmsr(FIXED_CTR_CTRL, ctrl)
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    return cpu


def run_interval(cpu: Any, slots: int, shares: tuple[int, ...], l2: tuple[int, ...] = ()) -> None:
    cpu.retire("topdown-slots", slots)
    for event, n in zip(L1_EVENTS, shares, strict=True):
        cpu.retire(event, n)
    for key, n in zip(L2_EVENTS, l2, strict=False):
        cpu.retire(key, n)


def fields(value: int, n: int = 4) -> list[int]:
    return [(value >> (8 * i)) & 0xFF for i in range(n)]


def linux_group_read(cpu: Any) -> tuple[int, int]:
    """update_topdown_event: RDPMC slots, RDPMC metrics, then FIXED_CTR3 = 0, PERF_METRICS = 0."""
    slots = cpu.rdpmc(RDPMC_SLOTS)
    metrics = cpu.rdpmc(RDPMC_METRICS)
    cpu.wrmsr(FIXED_CTR3, 0)
    cpu.wrmsr(PERF_METRICS, 0)
    return slots, metrics


def test_absent_topdown_faults_like_kvm(plugins: vpmu.PluginManager) -> None:
    cpu = vpmu.Machine.from_dict({"pmu": SPR}, plugins).vcpus[0]
    for access in (
        lambda: cpu.rdmsr(PERF_METRICS),
        lambda: cpu.wrmsr(PERF_METRICS, 0),
        lambda: cpu.rdpmc(RDPMC_METRICS),
        lambda: cpu.wrmsr(GLOBAL_CTRL, EN_PERF_METRICS),
        lambda: cpu.wrmsr(OVF_CTRL, 1 << 48),
    ):
        with pytest.raises(vpmu.GuestFault) as exc:
            access()
        assert exc.value.vector == 13
    assert not cpu.rdmsr(PERF_CAPABILITIES) & (1 << 15)
    cpu.wrmsr(FIXED_CTR3, 5)  # fixed counter 3 itself is there, topdown or not
    assert cpu.rdpmc(RDPMC_SLOTS) == 5


def test_topdown_opens_bit_48_and_enumerates(build: Any) -> None:
    cpu = build(topdown_config(4)).vcpus[0]
    cpu.wrmsr(GLOBAL_CTRL, EN_PERF_METRICS)
    assert cpu.rdmsr(GLOBAL_CTRL) == EN_PERF_METRICS
    cpu.wrmsr(OVF_CTRL, 1 << 48)
    assert cpu.rdmsr(PERF_CAPABILITIES) & (1 << 15)
    with pytest.raises(vpmu.GuestFault):  # still no metrics-clear or other RDPMC types
        cpu.rdpmc((1 << 29) | 1)


def test_fields_are_shares_of_slots(build: Any) -> None:
    cpu = topdown(build)
    run_interval(cpu, 1000, (400, 100, 200, 300))
    # exact shares 102.0, 25.5, 51.0, 76.5 -> largest remainder gives the .5s in order
    assert fields(cpu.rdmsr(PERF_METRICS)) == [102, 26, 51, 76]
    assert cpu.rdpmc(RDPMC_METRICS) == cpu.rdmsr(PERF_METRICS)
    assert cpu.rdpmc(RDPMC_SLOTS) == 1000


def test_sapphire_rapids_level_2(build: Any) -> None:
    cpu = topdown(build, 8)
    run_interval(cpu, 1000, (400, 100, 200, 300), (100, 60, 150, 250))
    f = fields(cpu.rdmsr(PERF_METRICS), 8)
    assert f[:4] == [102, 26, 51, 76]
    assert f[4:] == [26, 15, 38, 64]  # 25.5, 15.3, 38.25, 63.75 rounded
    assert all(f[4 + j] <= f[j] for j in range(4))  # each L2 inside its L1 parent


@settings(max_examples=80, deadline=None)
@given(
    parts=st.lists(st.integers(0, 10**7), min_size=4, max_size=4).filter(lambda p: sum(p) > 0),
    metrics=st.sampled_from([4, 8]),
)
def test_l1_sums_to_ff_and_each_field_within_one_unit(
    plugins: vpmu.PluginManager, parts: list[int], metrics: int
) -> None:
    cpu = topdown(lambda c: vpmu.Machine.from_dict(c, plugins), metrics)
    slots = sum(parts)
    run_interval(cpu, slots, tuple(parts), tuple(p // 3 for p in parts))
    f = fields(cpu.rdpmc(RDPMC_METRICS), metrics)
    assert sum(f[:4]) == 0xFF
    for got, part in zip(f[:4], parts, strict=True):
        assert abs(got - part * 0xFF / slots) < 1
    for j in range(metrics - 4):
        assert abs(f[4 + j] - (parts[j] // 3) * 0xFF / slots) <= 0.5 or f[4 + j] == f[j]


def test_linux_group_read_gives_each_interval_its_own_fractions(build: Any) -> None:
    cpu = topdown(build)
    run_interval(cpu, 2000, (1000, 500, 250, 250))
    slots, metrics = linux_group_read(cpu)
    assert slots == 2000
    # 127.5, 63.75, 31.875, 31.875: the three largest remainders round up, sum 0xFF
    assert fields(metrics) == [127, 64, 32, 32]
    assert cpu.rdpmc(RDPMC_SLOTS) == 0 and cpu.rdpmc(RDPMC_METRICS) == 0
    run_interval(cpu, 1000, (0, 0, 1000, 0))
    slots, metrics = linux_group_read(cpu)
    assert (slots, fields(metrics)) == (1000, [0, 0, 255, 0])  # nothing of interval 1 left


def test_reset_in_the_wrong_order_dilutes_the_next_interval(build: Any) -> None:
    right, wrong = topdown(build), topdown(build)
    for cpu in (right, wrong):
        run_interval(cpu, 3000, (3000, 0, 0, 0))
    right.wrmsr(FIXED_CTR3, 0)  # the rule: fixed counter 3 first...
    right.wrmsr(PERF_METRICS, 0)  # ...then PERF_METRICS, which is derived from it
    wrong.wrmsr(PERF_METRICS, 0)  # re-bases on the 3000 slots still in fixed counter 3
    wrong.wrmsr(FIXED_CTR3, 0)
    for cpu in (right, wrong):
        run_interval(cpu, 1000, (0, 0, 0, 1000))  # a fully backend-bound interval
    assert right.rdpmc(RDPMC_SLOTS) == wrong.rdpmc(RDPMC_SLOTS) == 1000
    assert fields(right.rdpmc(RDPMC_METRICS)) == [0, 0, 0, 255]
    # The guest sees 1000 of 4000 slots as backend bound and the rest in no category:
    # the level-1 fields no longer sum to 0xFF.
    assert fields(wrong.rdpmc(RDPMC_METRICS)) == [0, 0, 0, 63]
    linux_group_read(wrong)  # a correct reset repairs it
    run_interval(wrong, 1000, (0, 0, 0, 1000))
    assert fields(wrong.rdpmc(RDPMC_METRICS)) == [0, 0, 0, 255]


def test_restoring_saved_values_keeps_the_fractions(build: Any) -> None:
    cpu = topdown(build)
    run_interval(cpu, 1000, (500, 0, 500, 0))
    slots, metrics = cpu.rdpmc(RDPMC_SLOTS), cpu.rdpmc(RDPMC_METRICS)
    cpu.wrmsr(FIXED_CTR3, slots)  # Linux's reschedule path: slots first, then metrics
    cpu.wrmsr(PERF_METRICS, metrics)
    run_interval(cpu, 1000, (500, 0, 500, 0))
    assert fields(metrics) == [128, 0, 127, 0]
    # The same fractions go on, up to the 8-bit precision the saved value carried.
    assert fields(cpu.rdpmc(RDPMC_METRICS)) == [127, 0, 127, 0]


def test_metrics_count_only_with_en_perf_metrics(build: Any) -> None:
    cpu = topdown(build)
    cpu.wrmsr(GLOBAL_CTRL, 1 << 35)
    run_interval(cpu, 1000, (1000, 0, 0, 0))
    assert cpu.rdpmc(RDPMC_SLOTS) == 1000
    assert cpu.rdpmc(RDPMC_METRICS) == 0
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    run_interval(cpu, 1000, (0, 1000, 0, 0))
    assert fields(cpu.rdpmc(RDPMC_METRICS)) == [0, 255, 0, 0]


def test_sub_counter_wrap_sets_bit_48_and_raises_a_pmi(build: Any) -> None:
    cpu = topdown(build, ctrl=FIXED3_OS_USR | FIXED3_PMI, fixed_width=16)
    cpu.retire("topdown-bad-spec", 0xFFFF)  # hidden 16-bit sub-counter at its maximum
    assert cpu.pmis == []
    cpu.retire("topdown-bad-spec", 1)
    assert len(cpu.pmis) == 1
    assert cpu.rdmsr(GLOBAL_STATUS) == 1 << 48
    cpu.wrmsr(OVF_CTRL, 1 << 48)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0


def test_topdown_snapshot_round_trips(build: Any) -> None:
    cpu = topdown(build, 8)
    run_interval(cpu, 777, (300, 77, 200, 200), (10, 20, 30, 40))
    snap = cpu.snapshot()
    twin = build(topdown_config(8)).vcpus[0]
    twin.restore(snap.model_dump_json())
    assert twin.snapshot() == snap
    for c in (cpu, twin):
        run_interval(c, 223, (100, 23, 50, 50), (1, 2, 3, 4))
    assert twin.rdmsr(PERF_METRICS) == cpu.rdmsr(PERF_METRICS)
    assert fields(twin.rdmsr(PERF_METRICS))[:4] == [102, 25, 64, 64]


def test_perf_metrics_reserved_bits_on_ice_lake(build: Any) -> None:
    cpu = topdown(build, 4)
    with pytest.raises(vpmu.GuestFault):
        cpu.wrmsr(PERF_METRICS, 1 << 32)


def test_vcpu_reset_clears_the_hidden_sub_counts(build: Any) -> None:
    """RESET zeroes PERF_METRICS' hidden counts: the next interval is its own fractions."""
    cpu = topdown(build)
    run_interval(cpu, 1000, (400, 100, 200, 300))
    cpu.reset()
    assert cpu.rdmsr(PERF_METRICS) == 0 and cpu.rdmsr(FIXED_CTR3) == 0
    assert cpu.rdmsr(GLOBAL_CTRL) == 0xFF  # RESET: GP enables only, EN_PERF_METRICS clear
    cpu.wrmsr(FIXED_CTR_CTRL, FIXED3_OS_USR)
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    run_interval(cpu, 1000, (250, 250, 250, 250))
    # without the reset the old counts would still weigh in: [102, 26, 51, 76] mixed in
    assert fields(cpu.rdmsr(PERF_METRICS)) == [64, 64, 64, 63]


def test_topdown_needs_the_intel_backend(build: Any) -> None:
    with pytest.raises(vpmu.ConfigError, match=r"^pmu.topdown_metrics = 4: unknown key"):
        build({"pmu": {"backend": "amd", "topdown_metrics": 4}})


def test_topdown_needs_fixed_counter_3(build: Any) -> None:
    with pytest.raises(vpmu.ConfigError, match="fixed_counters = 4") as exc:
        build(topdown_config(4, fixed_counters=3))
    assert str(exc.value).startswith("pmu.topdown_metrics = 4: ")
    assert "\n" not in str(exc.value)


def test_shipped_topdown_config_runs(plugins: Any) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "intel-spr-topdown.toml"
    result = vpmu.run(config, plugins)
    assert result.extensions == []  # topdown is the Intel backend's own
    rows = {r.event: r for r in result.counters}
    assert rows["topdown-slots"].value == 60_000_000
    exact = [r for e, r in rows.items() if e != "instructions" and r.expected is not None]
    assert all(r.value == r.expected for r in exact)
    # the guest's enable_all sets EN_PERF_METRICS, so PERF_METRICS reads the shares of slots
    metrics = {r.event: r.value for r in result.counters if r.counter == "perf_metrics"}
    assert metrics["topdown-retiring"] == 24 * 255 // 60
    assert sum(metrics[e] for e in list(metrics)[:4]) == 0xFF


# ---------------------------------------------------------------- issue 11, item 4
def test_metrics_stop_when_fixed_counter_3_is_globally_disabled(build: Any) -> None:
    """PERF_METRICS is derived from the SLOTS fixed counter 3 counts: GLOBAL_CTRL bit 35
    clear with bit 48 set counts no slots and so no metrics (Linux enables the metric
    events through fixed counter 3's field, intel_pmu_enable_fixed at 4383cfa18c5b)."""
    cpu = topdown(build)
    cpu.wrmsr(GLOBAL_CTRL, EN_PERF_METRICS)  # bit 35 clear, bit 48 set
    run_interval(cpu, 1000, (400, 100, 200, 300))
    assert cpu.rdpmc(RDPMC_SLOTS) == 0
    assert cpu.rdpmc(RDPMC_METRICS) == 0
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    run_interval(cpu, 1000, (0, 0, 1000, 0))
    assert cpu.rdpmc(RDPMC_SLOTS) == 1000
    assert fields(cpu.rdpmc(RDPMC_METRICS)) == [0, 0, 255, 0]


def test_perf_metrics_faults_without_pdcm(build: Any) -> None:
    """Without PDCM the guest cannot read PERF_CAPABILITIES bit 15, so (as KVM gives a
    vCPU without PDCM a PERF_CAPABILITIES of 0) PERF_METRICS, its RDPMC and bit 48 #GP."""
    cpu = build(topdown_config(4, pdcm=False, full_width_writes=False)).vcpus[0]
    for access in (
        lambda: cpu.rdmsr(PERF_METRICS),
        lambda: cpu.wrmsr(PERF_METRICS, 0),
        lambda: cpu.rdpmc(RDPMC_METRICS),
        lambda: cpu.wrmsr(GLOBAL_CTRL, EN_PERF_METRICS),
        lambda: cpu.rdmsr(PERF_CAPABILITIES),
    ):
        with pytest.raises(vpmu.GuestFault) as exc:
            access()
        assert exc.value.vector == 13
    cpu.wrmsr(FIXED_CTR3, 7)  # fixed counter 3 is still there
    assert cpu.rdpmc(RDPMC_SLOTS) == 7


def test_perf_metrics_capability_without_the_msr_is_refused(build: Any) -> None:
    """PERF_CAPABILITIES bit 15 makes Linux add bit 48 to intel_ctrl (intel_pmu_init), and
    enable_all writes it to GLOBAL_CTRL: without the MSR that WRMSR #GPs in the guest."""
    with pytest.raises(vpmu.ConfigError) as exc:
        build({"pmu": {**SPR, "perf_capabilities": 1 << 15}})
    msg = str(exc.value)
    assert msg.startswith("pmu.perf_capabilities = 32768: ")
    assert "topdown_metrics" in msg and "\n" not in msg
    # with topdown_metrics the bit is what the PMU enumerates anyway: accepted
    cpu = build(topdown_config(4, perf_capabilities=1 << 15)).vcpus[0]
    assert cpu.rdmsr(PERF_CAPABILITIES) & (1 << 15)


def test_v6_bitmap_with_fixed_counter_3_takes_topdown(build: Any) -> None:
    """The topdown rule asks for fixed counter 3, not for four fixed counters. (The host
    is given its fixed counter 3: a default host has as many counters as the guest,
    three, and SLOTS has no GP fallback.)"""
    pmu = {"backend": "intel", "version": 6, "gp_bitmap": 0xFF, "fixed_bitmap": 0b1011}
    host = {"fixed_counters": 4}
    cpu = build({"pmu": {**pmu, "topdown_metrics": 4}, "host": host}).vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(FIXED_CTR3, 0)
    cpu.wrmsr(PERF_METRICS, 0)
    cpu.wrmsr(FIXED_CTR_CTRL, FIXED3_OS_USR)
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    run_interval(cpu, 1000, (1000, 0, 0, 0))
    assert fields(cpu.rdpmc(RDPMC_METRICS)) == [255, 0, 0, 0]
    with pytest.raises(vpmu.ConfigError, match="fixed counter 3") as exc:
        build({"pmu": {**pmu, "fixed_bitmap": 0b0111, "topdown_metrics": 4}})
    assert str(exc.value).startswith("pmu.topdown_metrics = 4: ")


PERF_STRATEGIES = ["emulated-legacy", "emulated", "fastpath"]


@pytest.mark.parametrize("strategy", PERF_STRATEGIES)
@pytest.mark.parametrize("metrics", [4, 8])
def test_host_runs_one_slots_led_group_on_fixed_counter_3(
    build: Any, strategy: str, metrics: int
) -> None:
    """Linux's topdown group: the slots leader on host fixed counter 3, every metric event
    a member of its group on PERF_METRICS, never slots or a metric on a generic counter
    (intel_pmu_check_event_constraints keeps INTEL_PMC_MSK_TOPDOWN off the GP counters,
    4383cfa18c5b). With one host GP counter, the guest's GP event still gets it."""
    config = topdown_config(metrics)
    config["strategy"] = {"name": strategy}
    config["host"] = {"gp_counters": 1, "pcpus": 1}
    m = build(config)
    cpu = m.vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(0x186, 0x4300C4)  # PERFEVTSEL0: branches
    cpu.wrmsr(FIXED_CTR3, 0)
    cpu.wrmsr(PERF_METRICS, 0)
    cpu.wrmsr(FIXED_CTR_CTRL, FIXED3_OS_USR)
    cpu.wrmsr(GLOBAL_CTRL, 1 | (1 << 35) | EN_PERF_METRICS)
    cpu.sync()
    guest = [e for e in m.host.tasks[0] if e.owner == "guest"]
    assert all(e.running for e in guest)
    placed = sorted(e.counter for e in guest)
    assert placed == sorted(["gp0", "fixed3", *["metrics"] * metrics])
    slots = [e for e in guest if e.counter == "fixed3"]
    members = [e for e in guest if e.counter == "metrics"]
    assert {e.group for e in members} == {slots[0].group}  # one group, slots-led
    gp = [e for e in guest if e.counter == "gp0"]
    assert gp[0].group != slots[0].group
    run_interval(cpu, 1000, (250, 250, 250, 250))
    cpu.retire("branches", 9)
    assert cpu.rdpmc(0) == 9 and cpu.rdpmc(RDPMC_SLOTS) == 1000
    assert fields(cpu.rdpmc(RDPMC_METRICS)) == [64, 64, 64, 63]


@pytest.mark.parametrize("strategy", PERF_STRATEGIES)
def test_topdown_group_without_host_fixed_counter_3_counts_nothing(
    build: Any, strategy: str
) -> None:
    """Slots never falls back to a GP counter: a host without a free fixed counter 3
    schedules no part of the topdown group, and neither SLOTS nor the metrics count."""
    config = topdown_config(4)
    config["strategy"] = {"name": strategy}
    config["host"] = {"fixed_counters": 3, "pcpus": 1}
    cpu = build(config).vcpus[0]
    cpu.wrmsr(0x834, 0x400)
    cpu.wrmsr(FIXED_CTR3, 0)
    cpu.wrmsr(PERF_METRICS, 0)
    cpu.wrmsr(FIXED_CTR_CTRL, FIXED3_OS_USR)
    cpu.wrmsr(GLOBAL_CTRL, (1 << 35) | EN_PERF_METRICS)
    cpu.sync()
    run_interval(cpu, 1000, (250, 250, 250, 250))
    assert cpu.rdpmc(RDPMC_SLOTS) == 0 and cpu.rdpmc(RDPMC_METRICS) == 0
    guest = [e for e in cpu.machine.host.tasks[0] if e.owner == "guest"]
    assert guest and not any(e.running for e in guest)
    assert all(e.counter is None for e in guest)


@settings(max_examples=60, deadline=None)
@given(
    field=st.integers(0, 0xB).filter(lambda f: not f & 0x4),
    bit35=st.booleans(),
    bit48=st.booleans(),
    cpl=st.sampled_from([0, 3]),
)
def test_metrics_count_exactly_when_fixed_counter_3_counts_and_bit_48_is_set(
    plugins: vpmu.PluginManager, field: int, bit35: bool, bit48: bool, cpl: int
) -> None:
    """For every fixed counter 3 field, GLOBAL_CTRL bits 35/48 and CPL: PERF_METRICS moves
    iff SLOTS moves and EN_PERF_METRICS is set."""
    cpu = topdown(lambda c: vpmu.Machine.from_dict(c, plugins))
    cpu.wrmsr(FIXED_CTR_CTRL, field << 12)
    cpu.wrmsr(GLOBAL_CTRL, bit35 << 35 | bit48 << 48)
    cpu.retire("topdown-slots", 1000, cpl=cpl)
    cpu.retire("topdown-retiring", 1000, cpl=cpl)
    slots_count = bool(field & (0x1 if cpl == 0 else 0x2)) and bit35
    assert cpu.rdpmc(RDPMC_SLOTS) == (1000 if slots_count else 0)
    assert cpu.rdpmc(RDPMC_METRICS) == (0xFF if slots_count and bit48 else 0)


@settings(max_examples=60, deadline=None)
@given(
    written=st.lists(st.integers(0, 0xFF), min_size=8, max_size=8),
    slots=st.integers(1, 1 << 40),
)
def test_an_l2_field_never_exceeds_its_l1_parent(
    plugins: vpmu.PluginManager, written: list[int], slots: int
) -> None:
    """§7.1: a level-2 field is a subset of its parent (Heavy_Ops of Retiring, ...), even
    when the hidden counts were re-based from fields that say otherwise."""
    cpu = topdown(lambda c: vpmu.Machine.from_dict(c, plugins), 8)
    cpu.wrmsr(FIXED_CTR3, slots)
    cpu.wrmsr(PERF_METRICS, sum(f << (8 * i) for i, f in enumerate(written)))
    f = fields(cpu.rdmsr(PERF_METRICS), 8)
    for j in range(4):
        assert f[4 + j] <= f[j]


def test_an_l2_share_above_its_parent_reads_as_the_parent() -> None:
    cpu = vpmu.Machine.from_dict(topdown_config(8)).vcpus[0]
    cpu.wrmsr(FIXED_CTR3, 0xFF * 1000)
    cpu.wrmsr(PERF_METRICS, 10 | 20 << 32)  # Retiring 10, Heavy_Ops 20
    assert fields(cpu.rdmsr(PERF_METRICS), 8) == [10, 0, 0, 0, 10, 0, 0, 0]
