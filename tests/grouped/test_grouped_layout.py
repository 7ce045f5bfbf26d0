"""Where an all-in-one counter may sit: overflow bits and RDPMC ECX no architecture uses.

An all-in-one counter's overflow is the GLOBAL_STATUS bit at its index and its RDPMC
ECX is answered beside the vendor's own, so either may collide with the architecture:
Intel's GLOBAL_STATUS gives bits 48 and 54-55 and 58-63 a meaning (PERF_METRICS, arch
PEBS threshold, ToPA, LBR/counters frozen, ASCI, uncore, OvfBuffer, CondChgd; Linux's
topdown metric events sit at 48-55), AMD's bits 58-59 (LBR / counters frozen);
RDPMC types 0 (GP), bit 30 (fixed), bit 29 (PERF_METRICS) and bit 31 (fast read) are
Intel's, ECX 0-15 AMD's counters (core, NB from 6, L3 from 10), and 0x10000-0x10002
KVM's VMware backdoor on both.
"""

from __future__ import annotations

from typing import Any

import pytest
from grouped_helpers import CTRL, DATA, GLOBAL_STATUS, LVTPC, OVF_CTRL, four_fields, grouped_config
from hypothesis import given, settings
from hypothesis import strategies as st

import vpmu_core as vpmu

INTEL_STATUS_TAKEN = {48, 49, 50, 51, 52, 53, 54, 55, 58, 59, 60, 61, 62, 63}
AMD_STATUS_TAKEN = {58, 59}
AMD = {"backend": "amd", "generation": "perfmon-v2"}


def counter(i: int, **extra: Any) -> dict[str, Any]:
    """The i-th of several counters, each on MSRs and an RDPMC ECX of its own."""
    own = {"name": f"c{i}", "msr": DATA + 2 * i, "ctrl_msr": CTRL + 2 * i, "rdpmc": 0x20000 + i}
    return four_fields(**{**own, **extra})


def on_amd(counters: list[dict[str, Any]]) -> dict[str, Any]:
    """The same counters on a PerfMonV2 vCPU, counting events AMD has."""
    events = ("branches", "branch-misses", "cycles", "instructions")
    for c in counters:
        c["fields"] = [{**f, "event": e} for f, e in zip(c["fields"], events, strict=True)]
    return {**grouped_config(counters), "pmu": AMD}


def refused(build: Any, config: dict[str, Any]) -> str:
    with pytest.raises(vpmu.ConfigError) as exc:
        build(config)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_third_counter_does_not_default_to_lbrs_frozen(build: Any) -> None:
    m = build(grouped_config([counter(i) for i in range(4)]))
    indexes = [p.idx for p in m.vcpus[0].ext["grouped"]]
    assert indexes == [56, 57, 49, 50]  # not 58 (LBR_FROZEN) or 59 (CTR_FRZ)
    assert not set(indexes) & INTEL_STATUS_TAKEN - {49, 50, 51, 52, 53}


def test_third_counter_overflow_is_its_own_status_bit(build: Any) -> None:
    cpu = build(grouped_config([counter(i) for i in range(3)])).vcpus[0]
    cpu.wrmsr(LVTPC, 0x400)
    cpu.wrmsr(CTRL + 4, 0b1011)
    cpu.retire("branches", 0x100)  # field 0 of the third counter wraps
    assert cpu.rdmsr(GLOBAL_STATUS) == 1 << 49
    assert cpu.pmis[0].status == 1 << 49
    cpu.wrmsr(OVF_CTRL, 1 << 49)
    assert cpu.rdmsr(GLOBAL_STATUS) == 0


@pytest.mark.parametrize(
    ("index", "meaning"),
    [(62, "OvfBuffer"), (58, "LBR"), (63, "CondChgd"), (55, "ToPA"), (48, "PERF_METRICS")],
)
def test_intel_status_bits_with_a_meaning_are_refused(build: Any, index: int, meaning: str) -> None:
    msg = refused(build, grouped_config([counter(0, index=index)]))
    assert msg.startswith(f"grouped.counters[0].index = {index}: ")
    assert meaning in msg
    assert "allowed: 56-57, 49-53" in msg


def test_index_48_beside_topdown_is_a_config_error(build: Any) -> None:
    config = grouped_config([counter(0, index=48)], pmu={"topdown_metrics": 4})
    assert refused(build, config).startswith("grouped.counters[0].index = 48: ")


def test_linux_metric_indexes_are_refused_beside_topdown(build: Any) -> None:
    """A Linux guest with topdown keeps metric event i at index 48 + i and serves a
    set status bit there as that event's overflow (handle_pmi_common)."""
    config = grouped_config([counter(0, index=50)], pmu={"topdown_metrics": 4})
    msg = refused(build, config)
    assert "topdown" in msg and "allowed: 56-57, 52-53" in msg
    m = build(grouped_config([counter(i) for i in range(3)], pmu={"topdown_metrics": 4}))
    assert [p.idx for p in m.vcpus[0].ext["grouped"]] == [56, 57, 52]
    eight = grouped_config([counter(i) for i in range(3)], pmu={"topdown_metrics": 8})
    assert "no free index" in refused(build, eight)


@pytest.mark.parametrize(
    ("ecx", "meaning"),
    [(0, "IA32_PMC0"), (3, "IA32_PMC3"), ((1 << 30) | 1, "fixed"), (1 << 29, "PERF_METRICS")],
)
def test_intel_rdpmc_of_a_counter_is_refused(build: Any, ecx: int, meaning: str) -> None:
    msg = refused(build, grouped_config([counter(0, rdpmc=ecx)]))
    assert msg.startswith("grouped.counters[0].rdpmc = ")
    assert f"RDPMC {ecx:#x} reads" in msg
    assert meaning in msg
    assert "0x10003-0x1fffffff" in msg


@pytest.mark.parametrize("ecx", [0x10000, 0x10002, 1 << 31])
def test_intel_rdpmc_backdoor_and_fast_read_are_refused(build: Any, ecx: int) -> None:
    refused(build, grouped_config([counter(0, rdpmc=ecx)]))


def test_rdpmc_0_no_longer_shadows_pmc0(build: Any) -> None:
    """What the refusal prevents: RDPMC 0 answered by the all-in-one counter, not PMC0."""
    msg = refused(build, grouped_config([counter(0, rdpmc=0)]))
    assert "IA32_PMC0" in msg


def test_rdpmc_shared_by_two_counters_is_refused(build: Any) -> None:
    config = grouped_config([counter(0), counter(1, rdpmc=0x20000)])
    assert refused(build, config).startswith("grouped.counters[1].rdpmc = 131072: ")


def test_amd_status_and_rdpmc(build: Any) -> None:
    m = build(on_amd([counter(i) for i in range(3)]))
    assert [p.idx for p in m.vcpus[0].ext["grouped"]] == [56, 57, 48]
    msg = refused(build, on_amd([counter(0, index=58)]))
    assert "LBR" in msg and "allowed: 56-57, 48-55, 60-63" in msg
    msg = refused(build, on_amd([counter(0, rdpmc=6)]))
    assert msg.startswith("grouped.counters[0].rdpmc = 6: ")
    build(on_amd([counter(0, index=62, rdpmc=0x20)]))  # free on AMD


@settings(max_examples=60, deadline=None)
@given(
    indexes=st.lists(st.integers(48, 63) | st.none(), min_size=1, max_size=6),
    vendor=st.sampled_from(["intel", "amd"]),
)
def test_accepted_layouts_never_touch_an_architectural_bit(
    plugins: vpmu.PluginManager, indexes: list[int | None], vendor: str
) -> None:
    """For every layout: refused, or every counter on a distinct bit no architecture uses."""
    taken = AMD_STATUS_TAKEN if vendor == "amd" else INTEL_STATUS_TAKEN - {49, 50, 51, 52, 53}
    counters = [
        counter(i) if idx is None else counter(i, index=idx) for i, idx in enumerate(indexes)
    ]
    try:
        config = on_amd(counters) if vendor == "amd" else grouped_config(counters)
        m = vpmu.Machine.from_dict(config, plugins)
    except vpmu.ConfigError:
        explicit = [i for i in indexes if i is not None]
        assert set(explicit) & taken or len(set(explicit)) < len(explicit)
        return
    got = [p.idx for p in m.vcpus[0].ext["grouped"]]
    assert len(set(got)) == len(got)
    assert not set(got) & taken
    assert all(g == i for g, i in zip(got, indexes, strict=True) if i is not None)
