"""Guest perf workloads (perf-stat, perf-record, trace), at reduced scale."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.compare import compare_table, overhead
from vpmu_core.errors import ConfigError
from vpmu_core.machine import Machine
from vpmu_core.workloads.profiles import IDLE, SPECINT, Truth
from vpmu_core.workloads.trace import Trace

ROOT = Path(__file__).parent.parent
TABLE = ROOT / "configs" / "seed-mediated-table.toml"
LEGACY = ROOT / "configs" / "seed-legacy-sample-loss.toml"


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _small_table(vcpus: int = 4, ms: float = 20.0) -> dict[str, Any]:
    data = _load(TABLE)
    data["machine"]["vcpus"] = vcpus
    data["host"]["pcpus"] = vcpus
    data["workload"]["duration_ms"] = ms
    data["workload"]["workers"] = 1
    return data


# ------------------------------------------------------------------ profiles
@pytest.mark.parametrize("profile", [SPECINT, IDLE], ids=["specint", "idle"])
def test_counts_are_exact_consequences_of_the_rates(profile: Any) -> None:
    t = Truth(profile)
    for n in (1, 7, 1000, 123_457):
        start = 999_983
        for usr, os in ((True, True), (True, False), (False, True)):
            c = t.cycles_for("instructions", start, n, usr, os)
            if c is None:
                continue
            got = t.count("instructions", start + c, usr, os) - t.count(
                "instructions", start, usr, os
            )
            before = t.count("instructions", start + c - 1, usr, os) - t.count(
                "instructions", start, usr, os
            )
            assert got >= n > before  # the first cycle at which n more have retired


# ---------------------------------------------------------------- perf-record
def test_table_ordering_and_every_cell_from_one_cost_table() -> None:
    data = _small_table()
    table = compare_table(data)
    assert len(table.cells) == 6
    for row in table.rows:
        emu, allpt, flt = (c.model for c in table.cells if c.row == row)
        assert emu is not None and allpt is not None and flt is not None
        assert emu > flt > allpt > 0
    assert "costs" not in data


def test_first_freq_pmi_comes_almost_at_once() -> None:
    from vpmu_core.workloads.perf import simulate

    data = _small_table(vcpus=1, ms=5)
    data.pop("compare")
    # keep every PMI: six de-phased frequency events take more than the default log
    # holds while their periods converge, and pmis[0] must be the very first
    data["machine"]["pmi_log"] = 2000
    m = Machine.from_dict(data)
    simulate(m, [0])
    pmis = m.vcpus[0].pmis
    assert len(list(pmis)) == len(pmis)
    # period 1 (clamped to 2): the first PMI within a handful of cycles, and the
    # period then converges: a few thousand PMIs would mean it never did
    assert pmis[0].clock < 10
    assert 5 < len(pmis) < 2000


def test_perf_record_samples_near_the_asked_rate_under_mediated() -> None:
    data = _small_table(vcpus=2, ms=200)
    data.pop("compare")
    r = vpmu.run(data)
    x = r.extra
    # 6 events x 1000 Hz x 0.2 s x 2 vCPUs of wall clock; the guest works 90% of it
    # (the rest its exits and switches took), and the first ticks ramp the period up
    assert x["samples_expected"] == 2160
    assert 0.8 * 2400 < x["samples_taken"] < 1.2 * 2400
    assert x["pmis_dropped_lvtpc_masked"] == 0


def test_serial_and_parallel_runs_are_identical() -> None:
    data = _small_table(vcpus=4, ms=10)
    data.pop("compare")
    serial = vpmu.run(data)
    data["workload"]["workers"] = 2
    parallel = vpmu.run(data)
    assert serial.ledger == parallel.ledger
    assert serial.counters == parallel.counters
    assert serial.extra["perf"] == parallel.extra["perf"]
    assert serial.cost.total_ns == parallel.cost.total_ns


def test_legacy_loses_samples_to_its_own_handler_cost() -> None:
    """With ticks paced by work (the what-if clock): on the wall clock the legacy
    guest's ticks cost more than their period and it barely works (test_wall_clock)."""
    data = _load(LEGACY)
    data["workload"]["duration_ms"] = 300
    data["guest"]["clock"] = "work"
    data.pop("compare")
    legacy = vpmu.run(data)
    data["strategy"] = {"name": "fastpath"}
    fast = vpmu.run(data)
    lx, fx = legacy.extra, fast.extra
    assert lx["max_sample_rate_final"] < 100_000  # perf lowered its own limit
    assert lx["throttles"] > 0 and lx["samples_lost_throttling"] > 0
    assert lx["samples_taken"] < 0.9 * lx["samples_expected"]
    assert fx["samples_taken"] > lx["samples_taken"]
    assert overhead(legacy, "samples") is not None


def test_multiplexing_rotates_and_scales() -> None:
    data = _small_table(vcpus=1, ms=30)
    data.pop("compare")
    data["workload"] = {
        "kind": "perf-stat",
        "events": ["instructions"] * 10,
        "duration_ms": 30,
    }
    r = vpmu.run(data)
    perf = r.extra["perf"][0]
    assert perf["rotations"] >= 25
    for row in perf["rows"]:
        assert 80 < row["running_pct"] < 100  # 9 counters for 10 events
        assert abs(row["scaled"] - row["truth"]) / row["truth"] < 0.05


def test_perf_stat_fits_without_rotation() -> None:
    data = _small_table(vcpus=1, ms=10)
    data.pop("compare")
    data["workload"] = {"kind": "perf-stat", "events": ["instructions", "cycles", "branches"]}
    r = vpmu.run(data)
    perf = r.extra["perf"][0]
    assert perf["rotations"] == 0
    for row in perf["rows"]:
        # counting only: perf's own MSR accesses are the only extra instructions
        assert 0 <= row["value"] - row["truth"] < 100


def test_amd_runs_the_same_workload() -> None:
    data = {
        "machine": {"vcpus": 1},
        "pmu": {"backend": "amd", "generation": "perfmon-v2", "gp_counters": 6},
        "strategy": {"name": "emulated"},
        "workload": {
            "kind": "perf-record",
            "events": ["instructions"] * 3,
            "freq": 1000,
            "duration_ms": 20,
        },
    }
    r = vpmu.run(data)
    assert r.extra["samples_taken"] > 0


def test_bad_perf_config_is_refused() -> None:
    data = _small_table()
    data.pop("compare")
    data["workload"]["period"] = 1000  # both -F and -c
    with pytest.raises(ConfigError, match="exactly one of freq"):
        vpmu.load_config(data)


# ---------------------------------------------------------------------- trace
def _trace_machine() -> Machine:
    data = _load(ROOT / "configs" / "trace-example.toml")
    return Machine.from_dict(data)


def test_trace_example_replays_with_its_pmi() -> None:
    r = vpmu.run(ROOT / "configs" / "trace-example.toml")
    assert r.extra["faults"] == [] and r.extra["mismatches"] == []
    assert r.pmis == [1]


def test_malformed_trace_line_is_rejected_with_its_number_and_nothing_runs() -> None:
    m = _trace_machine()
    before = m.ledger.as_dict()
    text = "wrmsr 0x38f 0\nrdpmc 0\nwrmsr 0x186\nrun 10 cycles\n"
    cfg = m.config.workload.model_copy(update={"path": None, "text": text})
    with pytest.raises(ConfigError, match="trace line 3"):
        Trace(cfg, m).run()
    assert m.ledger.as_dict() == before


@pytest.mark.parametrize(
    "line",
    ["frob 1", "run 10 bogons", "rdmsr", "migrate 99", "run 5 cycles cpl=7", "wrmsr 0x1 -3"],
)
def test_each_kind_of_bad_line_is_named(line: str) -> None:
    m = _trace_machine()
    cfg = m.config.workload.model_copy(update={"path": None, "text": f"rdpmc 0\n{line}\n"})
    with pytest.raises(ConfigError, match="trace line 2"):
        Trace(cfg, m).run()


def test_trace_fault_is_recorded_not_raised() -> None:
    m = _trace_machine()
    cfg = m.config.workload.model_copy(update={"path": None, "text": "rdmsr 0x12345\n"})
    out = Trace(cfg, m).run()
    assert out.extra["faults"][0]["line"] == 1


# ------------------------------------------------------------------------ CLI
def _small_toml(tmp_path: Path) -> Path:
    text = TABLE.read_text(encoding="utf-8")
    text = text.replace("vcpus = 56", "vcpus = 2").replace("pcpus = 56", "pcpus = 2")
    text = text.replace("duration_ms = 10000", "duration_ms = 5")
    path = tmp_path / "table.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_compare_cli_prints_the_table_beside_the_published_cells(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from vpmu_core.cli import app

    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, ["compare", str(_small_toml(tmp_path)), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "vs 33.62%" in res.output and "vs 10.45%" in res.output
    data = json.loads(out.read_text())
    assert len(data["cells"]) == 6 and data["metric"] == "score"


def test_ctrl_c_leaves_no_output_file(tmp_path: Path, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    import vpmu_core.compare as cmp
    from vpmu_core.cli import app

    calls = {"n": 0}
    real = cmp.compare

    def interrupted(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the second row: some work done, nothing written yet
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(cmp, "compare", interrupted)
    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, ["compare", str(_small_toml(tmp_path)), "--json", str(out)])
    assert res.exit_code == 130
    assert not out.exists()
    assert list(tmp_path.glob(".t.json*")) == []


def test_atomic_write_interrupted_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import os

    from vpmu_core.io import atomic_write_text

    def boom(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(tmp_path / "x.json", "{}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ more perf modes
def test_fixed_period_mode_samples_once_per_period() -> None:
    data = _small_table(vcpus=1, ms=50)
    data.pop("compare")
    data["workload"] |= {"events": ["instructions"], "freq": None, "period": 2_000_000}
    r = vpmu.run(data)
    row = r.extra["perf"][0]["rows"][0]
    assert row["expected_samples"] == round(row["truth"] / 2_000_000)
    assert abs(row["samples"] - row["expected_samples"]) <= 1


def test_host_contention_loses_guest_samples_under_emulated() -> None:
    data = _load(ROOT / "configs" / "host-contention.toml")
    data["workload"] = {
        "kind": "perf-record",
        "events": ["branches", "branch-misses", "cache-misses", "instructions"],
        "freq": 1000,
        "duration_ms": 50,
    }
    r = vpmu.run(data)
    assert r.extra["samples_lost_host_contention"] > 0
    assert r.ledger["events"].get("guest_event_sched_out", 0) > 0


def test_cycles_for_is_exact_for_any_rates() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vpmu_core.workloads.profiles import CplRates, Profile

    @settings(max_examples=200, deadline=None)
    @given(
        st.floats(0.0, 1.0),
        st.floats(0.001, 8.0),
        st.floats(0.0, 8.0),
        st.integers(0, 10**9),
        st.integers(1, 10**7),
    )
    def check(share: float, ru: float, rk: float, start: int, n: int) -> None:
        p = Profile(
            user_share=share,
            user=CplRates(rates={"instructions": ru}),
            kernel=CplRates(rates={"instructions": rk}),
        )
        t = Truth(p)
        c = t.cycles_for("instructions", start, n, True, True)
        if c is None:
            return
        base = t.count("instructions", start, True, True)
        assert t.count("instructions", start + c, True, True) - base >= n
        assert t.count("instructions", start + c - 1, True, True) - base < n

    check()


def _stat_with(pmu: dict[str, Any], rates: dict[str, float], events: list[str]) -> Any:
    profile = {"user_share": 1.0, "user": {"rates": rates}}
    return vpmu.run(
        {
            "pmu": pmu,
            "workload": {"kind": "perf-stat", "events": events, "profile": profile},
        }
    )


def test_a_profile_rate_under_any_spelling_reaches_its_event() -> None:
    """perf's catalog names the profile's keys as it names perf's events: ``r00c0`` is
    Intel's instructions, ``rc2`` AMD's branches (retired branch instructions)."""
    intel = {"backend": "intel", "version": 2}
    generic = _stat_with(intel, {"instructions": 0.5}, ["instructions"])
    raw = _stat_with(intel, {"r00c0": 0.5}, ["instructions"])
    # 100 ms at 2.5 GHz, half an instruction a cycle, and the enabling WRMSR
    assert generic.counters[0].value == raw.counters[0].value == 125_000_001
    amd = {"backend": "amd", "generation": "perfmon-v2"}
    branches = _stat_with(amd, {"rc2": 0.25}, ["branches"])
    assert branches.counters[0].value == 62_500_000  # before: 0, the rate never met its event


def test_two_spellings_of_one_event_with_other_rates_are_refused() -> None:
    with pytest.raises(vpmu.ConfigError, match="r00c0"):
        _stat_with({"backend": "intel", "version": 2}, {"instructions": 1, "r00c0": 2}, ["cycles"])
