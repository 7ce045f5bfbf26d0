"""perf's event names and syntax (vpmu_core/events.py), per vendor, to the event select.

The must-show: `vpmu run` of configs/intel-perf-names.toml and
configs/amd-zen4-perf-names.toml lands each event on the counter perf would use, with
the event-select value perf's driver writes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import vpmu_core as vpmu
from vpmu_core.errors import ConfigError
from vpmu_core.events import EventSpec, UnknownEvent, catalog_of
from vpmu_core.guest import hw_config
from vpmu_core.machine import Machine
from vpmu_core.workloads.counting import Counting
from vpmu_core.workloads.perf import simulate

ROOT = Path(__file__).resolve().parent.parent
INTEL = {"backend": "intel", "version": 2, "gp_counters": 8, "fixed_counters": 3}
ZEN4 = {"backend": "amd", "generation": "perfmon-v2", "event_map": "zen4"}


def machine(pmu: dict[str, Any], **extra: Any) -> Machine:
    return Machine.from_dict({"pmu": pmu, **extra})


def parse(pmu: dict[str, Any], spelling: str) -> EventSpec:
    cpu = machine(pmu).vcpus[0]
    return catalog_of(cpu.pmu.events, cpu.pmu.caps).parse(spelling)


# ------------------------------------------------------------------ the names
@pytest.mark.parametrize(
    ("spelling", "name", "key"),
    [
        ("cycles", "cycles", (0x3C, 0)),
        ("cpu-cycles", "cycles", (0x3C, 0)),
        ("instructions", "instructions", (0xC0, 0)),
        ("cache-references", "cache-references", (0x2E, 0x4F)),
        ("cache-misses", "cache-misses", (0x2E, 0x41)),
        ("branches", "branches", (0xC4, 0)),
        ("branch-instructions", "branches", (0xC4, 0)),
        ("branch-misses", "branch-misses", (0xC5, 0)),
        ("bus-cycles", "bus-cycles", (0x3C, 0x01)),
        ("ref-cycles", "ref-cycles", (0x00, 0x03)),
        ("r0300", "ref-cycles", (0x00, 0x03)),  # perf's own pseudo-encoding
        ("r013c", "bus-cycles", (0x3C, 0x01)),
        ("r00c0", "instructions", (0xC0, 0)),
        ("r01c2", "r1c2", (0xC2, 0x01)),
        ("cpu/event=0x3c,umask=0x1/", "bus-cycles", (0x3C, 0x01)),
    ],
)
def test_intel_generic_names_are_intel_perfmon_event_map(
    spelling: str, name: str, key: tuple[int, int]
) -> None:
    assert parse(INTEL, spelling) == EventSpec(name, key)


@pytest.mark.parametrize(
    ("event_map", "spelling", "key"),
    [
        ("k7", "cache-references", (0x7D, 0x07)),
        ("k7", "stalled-cycles-backend", (0xD1, 0)),
        ("zen1", "stalled-cycles-frontend", (0x87, 0x02)),
        ("zen1", "stalled-cycles-backend", (0x87, 0x01)),
        ("zen2", "stalled-cycles-frontend", (0xA9, 0)),
        ("zen4", "cache-misses", (0x64, 0x09)),
        ("zen4", "ref-cycles", (0x120, 0x01)),
        ("zen4", "r100000120", (0x120, 0x01)),
        ("zen4", "cpu/event=0x120,umask=1/", (0x120, 0x01)),
    ],
)
def test_amd_generic_names_follow_the_event_map(
    event_map: str, spelling: str, key: tuple[int, int]
) -> None:
    spec = parse({**ZEN4, "event_map": event_map}, spelling)
    assert (spec.key, spec.qual) == (key, 0)


@pytest.mark.parametrize(
    ("event_map", "spelling"),
    [("zen2", "stalled-cycles-backend"), ("zen2", "ref-cycles"), ("zen4", "bus-cycles")],
)
def test_amd_maps_no_such_event(event_map: str, spelling: str) -> None:
    with pytest.raises(UnknownEvent, match=r"^unknown event; "):
        parse({**ZEN4, "event_map": event_map}, spelling)


def test_qualifier_terms_reach_the_spec() -> None:
    spec = parse(INTEL, "cpu/event=0xc0,umask=0x0,cmask=2/")
    assert spec == EventSpec("r20000c0", (0xC0, 0), 0x0200_0000, "instructions")
    spec = parse(INTEL, "cpu/event=0xc0,inv,edge,cmask=1/")
    assert spec.qual == (1 << 23) | (1 << 18) | (1 << 24)
    assert parse(INTEL, "r18400c0") == spec  # the same config, raw
    amd = parse(ZEN4, "cpu/event=0xc0,umask=0x0,cmask=2/")
    assert (amd.key, amd.qual, amd.base) == ((0xC0, 0), 0x0200_0000, "instructions")


def test_raw_bits_outside_the_raw_event_mask_are_dropped() -> None:
    """x86_pmu_hw_config keeps X86_RAW_EVENT_MASK of a raw config (AMD64_RAW_EVENT_MASK)."""
    assert parse(INTEL, "r1004300c0") == EventSpec("instructions", (0xC0, 0))  # bit 32, EN..
    assert parse(INTEL, "cpu/event=0xc0,pc/") == EventSpec("instructions", (0xC0, 0))
    assert parse(ZEN4, "r3000000c0").key == (0x3C0, 0)  # AMD keeps event bits 35:32


@pytest.mark.parametrize(
    ("pmu", "spelling", "message"),
    [
        (
            INTEL,
            "cyclez",
            "unknown event; did you mean cycles, ref-cycles, cpu-cycles? known: "
            "branch-instructions, branch-misses, branches, bus-cycles, cache-misses, "
            "cache-references, cpu-cycles, cycles, instructions, lbr-inserts, ref-cycles, "
            "topdown-backend-bound, topdown-bad-spec, topdown-frontend-bound, "
            "topdown-retiring, topdown-slots; or raw rNNNN / cpu/event,umask,edge,pc,inv,cmask/",
        ),
        (
            INTEL,
            "cpu/any=1/",
            "unknown term 'any'; terms: config, event, umask, edge, pc, inv, cmask",
        ),
        (ZEN4, "cpu/pc=1/", "unknown term 'pc'; terms: config, event, umask, edge, inv, cmask"),
        (INTEL, "cpu/event=0x120/", "event=0x120 does not fit its 8 bits"),
        (ZEN4, "cpu/cmask=0x100/", "cmask=0x100 does not fit its 8 bits"),
        (INTEL, "cpu/umask=x/", "umask='x' is not a number"),
    ],
)
def test_unknown_spellings_are_one_line(pmu: dict[str, Any], spelling: str, message: str) -> None:
    with pytest.raises(UnknownEvent) as exc:
        parse(pmu, spelling)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("ref-tsc", "ref-cycles"),
        ("llc-misses", "cache-misses"),
        ("llc-references", "cache-references"),
    ],
)
def test_vpmus_old_names_are_refused_with_perfs(old: str, new: str) -> None:
    with pytest.raises(
        UnknownEvent, match=f"^unknown event; perf \\(and vpmu since\\) calls it {new}; "
    ):
        parse(INTEL, old)


def test_a_config_names_the_key_and_the_close_matches() -> None:
    with pytest.raises(ConfigError) as exc:
        vpmu.load_config({"pmu": ZEN4, "workload": {"kind": "perf-stat", "events": ["ref-cycle"]}})
    msg = str(exc.value)
    assert msg.startswith("workload.events = 'ref-cycle': unknown event; did you mean ref-cycles")
    assert "\n" not in msg
    with pytest.raises(ConfigError, match=r"^workload\.mix = 'bus-cycles': unknown event; "):
        vpmu.load_config({"pmu": ZEN4, "workload": {"kind": "counting", "mix": {"bus-cycles": 1}}})


# the raw config a spelling gives is exactly what the driver writes (hw_config)
@given(config=st.integers(0, (1 << 64) - 1))
def test_raw_config_round_trips_to_the_event_select_intel(config: int) -> None:
    spec = CATALOGS["intel"].parse(f"r{config:x}")
    assert hw_config(spec, usr=False, os=False, intr=False) == config & 0xFF84_FFFF


@given(config=st.integers(0, (1 << 64) - 1))
def test_raw_config_round_trips_to_the_event_select_amd(config: int) -> None:
    spec = CATALOGS["amd"].parse(f"r{config:x}")
    assert hw_config(spec, usr=False, os=False, intr=False) == config & 0xF_FF84_FFFF


def _catalog(pmu: dict[str, Any]) -> Any:
    cpu = machine(pmu).vcpus[0]
    return catalog_of(cpu.pmu.events, cpu.pmu.caps)


CATALOGS = {"intel": _catalog(INTEL), "amd": _catalog(ZEN4)}


# ------------------------------------------------------------ to the register
def test_retire_takes_every_spelling_and_refuses_qualifiers() -> None:
    cpu = machine(INTEL).vcpus[0]
    cpu.wrmsr(0x186, 0x4301C2)  # PERFEVTSEL0: r01c2, OS+USR+EN
    cpu.retire("r01c2", 5)
    cpu.retire("cpu/event=0xc2,umask=0x1/", 5)
    cpu.retire((0xC2, 0x01), 5)
    assert cpu.rdmsr(0xC1) == 15
    with pytest.raises(ValueError, match=r"^retire: 'cpu/event=0xc0,cmask=2/' has qualifier"):
        cpu.retire("cpu/event=0xc0,cmask=2/", 1)
    with pytest.raises(ValueError, match=r"^retire: 'ref-cycle': unknown event; did you mean"):
        cpu.retire("ref-cycle", 1)


def test_fixed_counter_2_counts_ref_cycles_kvm_selftest_style() -> None:
    """pmu_counters_test's fixed-counter case: enable fixed counter 2 alone (OS), run, read."""
    cpu = machine(INTEL).vcpus[0]
    cpu.wrmsr(0x38D, 0x1 << 8)  # FIXED_CTR_CTRL: counter 2, OS
    cpu.wrmsr(0x38F, 1 << 34)  # GLOBAL_CTRL: fixed counter 2 only
    cpu.retire("ref-cycles", 1000)
    cpu.retire("bus-cycles", 77)  # 0x013C is a GP event: not fixed counter 2's
    assert cpu.rdpmc((1 << 30) | 2) == 1000
    assert cpu.rdmsr(0x30B) == 1000


def run_counting(path: str) -> tuple[Machine, list[Any]]:
    m = Machine.from_toml(ROOT / path)
    rows = Counting(m.config.workload, m).run().rows
    return m, rows


def test_intel_perf_names_land_where_perf_puts_them() -> None:
    m, rows = run_counting("configs/intel-perf-names.toml")
    assert [(r.event, r.counter) for r in rows] == [
        ("ref-cycles", "fixed2"),
        ("bus-cycles", "gp0"),
        ("r01c2", "gp1"),
        ("cpu/event=0xc0,umask=0x0,cmask=2/", "gp2"),
    ]
    cpu = m.vcpus[0]
    assert [cpu.host_rdmsr(0x186 + i) for i in range(4)] == [0x43013C, 0x4301C2, 0x024300C0, 0]
    assert cpu.host_rdmsr(0x38D) == 0x300  # FIXED_CTR_CTRL: fixed counter 2, OS+USR
    assert [(r.value, r.expected) for r in rows[:3]] == [
        (12_000_000, 12_000_000),
        (480_000, 480_000),
        (16_000_000, 16_000_000),
    ]


def test_amd_perf_names_land_where_perf_puts_them() -> None:
    m, rows = run_counting("configs/amd-zen4-perf-names.toml")
    assert [(r.event, r.counter) for r in rows] == [
        ("ref-cycles", "gp0"),
        ("stalled-cycles-frontend", "gp1"),
        ("r100000120", "gp2"),
        ("cpu/event=0xc0,umask=0x0,cmask=2/", "gp3"),
    ]
    cpu = m.vcpus[0]
    ctl = [cpu.host_rdmsr(0xC0010200 + 2 * i) for i in range(4)]
    assert ctl == [0x1_0043_0120, 0x43_00A9, 0x1_0043_0120, 0x0243_00C0]
    assert [(r.value, r.expected) for r in rows[:3]] == [
        (12_000_000, 12_000_000),
        (2_500_000, 2_500_000),
        (12_000_000, 12_000_000),
    ]


def test_perf_stat_puts_ref_cycles_on_fixed_counter_2_only() -> None:
    """0x0300 is FIXED_EVENT_CONSTRAINT(0x0300, 2): a second ref-cycles event waits
    for a rotation instead of taking a GP counter; a PMU without the counter refuses it."""
    m = machine(
        INTEL,
        workload={"kind": "perf-stat", "events": ["ref-cycles", "ref-cycles"], "duration_ms": 20},
    )
    rows = simulate(m, [0])[0].rows
    assert [r["event"] for r in rows] == ["ref-cycles", "ref-cycles"]
    assert all(0 < r["running_pct"] < 100 for r in rows)  # they take turns on fixed2
    cpu = m.vcpus[0]
    assert [cpu.counters[i].control for i in range(8)] == [0] * 8  # never a GP counter
    m = machine(INTEL, workload={"kind": "perf-stat", "events": ["ref-cycles"], "duration_ms": 20})
    rows = simulate(m, [0])[0].rows
    assert rows[0]["running_pct"] == 100.0 and rows[0]["value"] == rows[0]["truth"] > 0
    with pytest.raises(ConfigError, match="counts only on a fixed counter this PMU lacks"):
        vpmu.run(
            {
                "pmu": {**INTEL, "fixed_counters": 2},
                "workload": {"kind": "perf-stat", "events": ["ref-cycles"], "duration_ms": 1},
            }
        )
    with pytest.raises(ConfigError, match=r"^workload\.events = 'ref-cycles': counts only"):
        vpmu.run(
            {
                "pmu": {**INTEL, "fixed_counters": 2},
                "workload": {"kind": "counting", "events": ["ref-cycles"], "mix": {}},
            }
        )


@pytest.mark.parametrize("config", ["intel-perf-names.toml", "amd-zen4-perf-names.toml"])
def test_vpmu_run_prints_the_perf_spellings(config: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vpmu_core.cli", "run", f"configs/{config}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ref-cycles" in done.stdout and "cpu/event=0xc0," in done.stdout


def test_an_inline_profile_names_events_like_a_config() -> None:
    profile = {"user": {"rates": {"instructions": 1.0, "bus-cycle": 0.1}}}
    with pytest.raises(ConfigError) as exc:
        vpmu.load_config({"pmu": INTEL, "workload": {"kind": "perf-stat", "profile": profile}})
    assert str(exc.value).startswith(
        "workload.profile.user.rates = 'bus-cycle': unknown event; did you mean bus-cycles"
    )
    # a raw event's rate, spelt r01c2 or r1c2, drives a raw counter
    profile = {"user_share": 1.0, "user": {"rates": {"r01c2": 0.5}}}
    m = machine(
        INTEL,
        workload={"kind": "perf-stat", "events": ["r01c2"], "duration_ms": 1, "profile": profile},
    )
    row = simulate(m, [0])[0].rows[0]
    assert row["event"] == "r01c2"
    assert row["truth"] == 1_250_000 and row["value"] == row["truth"]


def test_a_trace_runs_perf_spellings() -> None:
    text = "\n".join(
        [
            "wrmsr 0x186 0x4301c2",  # PERFEVTSEL0: r01c2
            "run 10 r01c2",
            "run 5 cpu/event=0xc2,umask=0x1/",
            "run 7 branch-instructions",
            "rdpmc 0",
            "expect rdpmc 0 15",
        ]
    )
    out = vpmu.run({"pmu": INTEL, "workload": {"kind": "trace", "text": text}})
    assert out.extra["mismatches"] == []
    assert out.extra["reads"][0]["value"] == 15
    m = machine(INTEL, workload={"kind": "trace", "text": "run 1 cpu/event=0xc0,cmask=2/"})
    with pytest.raises(ConfigError, match=r"^trace line 1 = 'cpu/event=0xc0,cmask=2/': has qual"):
        vpmu.run(m.config)
    m = machine(INTEL, workload={"kind": "trace", "text": "run 1 ref-cycle"})
    with pytest.raises(ConfigError, match=r"^trace line 1 = 'ref-cycle': unknown event; did"):
        vpmu.run(m.config)


def test_a_catalog_reads_its_format_once_and_a_driver_builds_its_catalog_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events are parsed at every counter a guest driver programs: the format terms'
    bits and the driver's catalog are built once, not per parse."""
    from vpmu_core import events

    reads: list[str] = []
    real = events._FIELD

    class Counted:
        def fullmatch(self, text: str) -> Any:
            reads.append(text)
            return real.fullmatch(text)

    monkeypatch.setattr(events, "_FIELD", Counted())
    catalog = _catalog(INTEL)
    for spelling in ("r01c2", "cpu/event=0xc0,cmask=2/", "r4300c0"):
        catalog.parse(spelling)
    assert len(reads) == len(catalog.event_format)
    m = machine(INTEL)
    driver = m.guest_driver(m.vcpus[0])
    assert driver.catalog is driver.catalog
    assert driver.event("ref-cycles") == catalog.parse("ref-cycles")
