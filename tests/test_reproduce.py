"""``vpmu reproduce``: every published figure in one table, and its sensitivity to the unknowns.

The runs here are shrunk (``--only``, ``--set``): what is tested is the plumbing (which
configs run, with which overrides, what the JSON holds, that Ctrl-C writes nothing) and
exact figures of the cheap seed, whose model values are fixed by the cost table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vpmu_core import reproduce as reproduce_module
from vpmu_core.api import run
from vpmu_core.cli import app
from vpmu_core.compare import Cell, dominant_is_the_figure_s, starved
from vpmu_core.errors import ConfigError
from vpmu_core.overrides import apply, configured
from vpmu_core.reproduce import discover, prepare, reproduce, select
from vpmu_core.sensitivity import sensitivity, unknowns, variants

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
PUBLISHED_SEEDS = {
    "seed-legacy-sample-loss",
    "seed-mediated-table",
    "seed-register",
    "seed-skip-reprogram",
}


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["reproduce", "--configs", str(CONFIGS), *args])
    return res.exit_code, res.output


def test_discover_finds_every_config_with_a_published_figure() -> None:
    # seed-skip-reprogram-migrated has only nan cells, seed-grouped and -enable-bit no rows
    assert set(discover(CONFIGS)) == PUBLISHED_SEEDS


def test_only_picks_by_stem_with_or_without_seed_prefix() -> None:
    found = discover(CONFIGS)
    assert list(select(found, ["register", "seed-skip-reprogram"])) == [
        "seed-register",
        "seed-skip-reprogram",
    ]
    with pytest.raises(ConfigError, match="--only = 'nope': one of seed-"):
        select(found, ["nope"])


def test_a_set_goes_where_its_key_exists_or_where_it_is_scoped() -> None:
    found = select(discover(CONFIGS), ["register", "skip-reprogram"])
    seeds = {
        s.name: s
        for s in prepare(
            found,
            ["machine.vcpus=2", "workload.duration_ms=50", "seed-register:workload.writes=3"],
        )
    }
    # the toggle workload has no duration: that --set skips it
    assert seeds["seed-register"].applied == ["machine.vcpus=2", "workload.writes=3"]
    assert seeds["seed-register"].data["workload"]["writes"] == 3
    assert "duration_ms" not in seeds["seed-register"].data["workload"]
    assert seeds["seed-skip-reprogram"].applied == ["machine.vcpus=2", "workload.duration_ms=50"]
    assert seeds["seed-skip-reprogram"].data["workload"]["duration_ms"] == 50
    with pytest.raises(ConfigError, match="no selected config has this key"):
        prepare(select(found, ["register"]), ["workload.duration_ms=50"])
    with pytest.raises(ConfigError, match="scope one of seed-register"):
        prepare(select(found, ["register"]), ["seed-grouped:machine.vcpus=2"])


def test_reproduce_shrunk_prints_every_published_figure_with_its_error(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.json"
    code, text = cli(
        "--only",
        "register",
        "--only",
        "skip-reprogram",
        "--set",
        "machine.vcpus=2",
        "--set",
        "workload.duration_ms=50",
        "--json",
        str(out),
    )
    assert code == 0, text
    assert "seed-skip-reprogram ran with machine.vcpus=2, workload.duration_ms=50" in text
    for line in ("2.50 ms", "3.58 ms", "+43%", "400 ns", "984 ns", "+146%", "ds_buffers_cpu"):
        assert line in text
    # the 97 ns is kvm_pmu_handle_event's, not the run's overhead: its dominant is the run's
    assert "events:ds_buffers_cpu (run)" in text and "(run): the figure is not" in text
    data = json.loads(out.read_text())
    assert data["format"] == "vpmu-reproduce/1"
    assert data["sets"] == ["machine.vcpus=2", "workload.duration_ms=50"]
    assert data["applied"]["seed-register"] == ["machine.vcpus=2"]
    assert set(data["configs"]) == {"seed-register", "seed-skip-reprogram"}
    # every cell of both tables; the two emulated columns of skip-reprogram were not measured
    assert len(data["figures"]) == 2 + 4
    assert sum(f["published"] is not None for f in data["figures"]) == 4
    legacy, register = data["figures"][:2]
    assert set(legacy) == {
        "seed",
        "config",
        "row",
        "column",
        "strategy",
        "design",
        "metric",
        "unit",
        "source",
        "published",
        "model",
        "rel_error_pct",
        "dominant",
        "dominant_pct",
    }
    assert (legacy["seed"], legacy["strategy"], legacy["unit"]) == (
        "seed-register",
        "emulated-legacy",
        "ns",
    )
    # one write: release (30 µs) + create (25 µs) + the first create's RCU grace period
    # (21 ms) + the PMU exit (800 ns)
    assert legacy["model"] == 3_575_800.0
    assert legacy["published"] == 2_500_000.0
    assert legacy["rel_error_pct"] == pytest.approx(43.032)
    assert register["model"] == 984.0 and register["dominant"] == "exit:wrmsr:eventsel"


def _cell(metric: str, model: float | None = 1.0) -> Cell:
    """A table cell with only what the figure is and its model value."""
    return Cell(
        row="r",
        column="c",
        strategy="s",
        metric=metric,
        unit="%",
        model=model,
        published=None,
        rel_error_pct=None,
        dominant="perf:period",
    )


def test_the_dominant_explains_a_figure_only_when_the_figure_is_the_overhead() -> None:
    assert dominant_is_the_figure_s(_cell("score")) and dominant_is_the_figure_s(_cell("time"))
    assert not dominant_is_the_figure_s(_cell("samples"))
    assert not dominant_is_the_figure_s(_cell("workload:pmu_handle_event_avg_ns"))


def test_a_starved_guest_s_figure_says_so() -> None:
    """The 10-event emulated mediated cell reads 99.98% at this scale (99.9955% at the
    published one): the guest worked almost nothing, which the share alone hides."""
    code, text = cli(
        "--only", "mediated-table", "--set", "machine.vcpus=1", "--set", "workload.duration_ms=100"
    )
    assert code == 0, text
    starved_rows = [line for line in text.splitlines() if "(starved)" in line and "│" in line]
    assert len(starved_rows) == 1
    assert "multiplex-sampling (10 events): emulated vPMU" in starved_rows[0]
    assert "99.98% (starved)" in starved_rows[0]
    assert "(starved): the run's overhead is 10× the guest's own time or more" in text


def test_starved_is_an_overhead_of_ten_times_guest_time_in_score_or_time() -> None:
    # score = O/(T+O): O/T = 10 is a score of 1000/11 = 90.909...%
    assert not starved(_cell("score", 90.90)) and starved(_cell("score", 90.91))
    assert starved(_cell("score", 99.9955)) and starved(_cell("score", 100.0))
    assert not starved(_cell("time", 999.99)) and starved(_cell("time", 1000.0))
    assert not starved(_cell("samples", 5000.0)) and not starved(_cell("score", None))
    assert not starved(_cell("workload:pmu_handle_event_avg_ns", 1e9))


def test_the_library_returns_a_pydantic_model_with_the_dominant_of_each_run() -> None:
    seeds = prepare(select(discover(CONFIGS), ["register"]))
    seen: dict[tuple[str, str, str], float] = {}
    result = reproduce(seeds, progress=lambda s, r, c, f: seen.__setitem__((s, r, c), f))
    # every run ends at 1.0, a workload that never tells its progress too
    assert seen == {
        ("seed-register", "one guest update of a PMU control MSR", column): 1.0
        for column in ("perf-event-oriented KVM (2018)", "register-oriented (v1 optimisation)")
    }
    direct = run(configured(CONFIGS / "seed-register.toml")[0])
    assert [f.model for f in result.published()] == [3_575_800.0, 984.0]
    assert result.figures[0].dominant == direct.cost.dominant


def _interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize("extra", [(), ("--sensitivity", "--cost", "vm_exit")])
def test_ctrl_c_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]
) -> None:
    monkeypatch.setattr(reproduce_module, "compare_table", _interrupt)
    out = tmp_path / "out.json"
    plots = tmp_path / "plots"
    code, text = cli("--only", "register", "--json", str(out), "--plot-dir", str(plots), *extra)
    assert code == 130, text
    assert "interrupted: nothing written" in text
    assert not out.exists() and not plots.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_bad_output_path_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ran before checking the output")

    monkeypatch.setattr(reproduce_module, "compare_table", never)
    code, text = cli("--only", "register", "--json", str(tmp_path))
    assert code == 2 and "--json" in text and "is a directory" in text
    (tmp_path / "file").write_text("x")
    code, text = cli("--only", "register", "--json", str(tmp_path / "file" / "out.json"))
    assert code == 2 and "is a file, not a directory" in text
    code, text = cli("--only", "register", "--sensitivity", "--plot-dir", str(tmp_path / "file"))
    assert code == 2 and "--plot-dir" in text
    code, text = cli("--only", "register", "--cost", "vm_exit")
    assert code == 2 and "only with --sensitivity" in text


def test_sensitivity_of_one_seed_draws_each_figure_and_orders_the_ends(tmp_path: Path) -> None:
    plots = tmp_path / "charts"
    out = tmp_path / "s.json"
    code, text = cli(
        "--only",
        "register",
        "--sensitivity",
        "--cost",
        "vm_exit",
        "--cost",
        "kvm_pmu_emulation",
        "--plot-dir",
        str(plots),
        "--json",
        str(out),
    )
    assert code == 0, text
    names = sorted(p.name for p in plots.iterdir())
    stem = "seed-register--one-guest-update-of-a-pmu-control-msr--"
    assert names == [
        f"{stem}perf-event-oriented-kvm-2018.png",
        f"{stem}perf-event-oriented-kvm-2018.svg",
        f"{stem}register-oriented-v1-optimisation.png",
        f"{stem}register-oriented-v1-optimisation.svg",
    ]
    assert all((plots / n).read_bytes()[:4] in (b"\x89PNG", b"<?xm") for n in names)
    data = json.loads(out.read_text())
    assert data["format"] == "vpmu-sensitivity/1"
    assert [u["name"] for u in data["unknowns"]] == ["vm_exit", "kvm_pmu_emulation"]
    register = data["figures"][1]
    assert register["figure"]["model"] == 984.0
    assert len(register["charts"]) == 2
    # a write is one PMU exit: vm_exit 600 ns (400-900), kvm_pmu_emulation 200 ns
    # (200-1200); the ends move the figure by exactly the cost's change, in order
    assert register["swings"] == [
        {
            "cost": "kvm_pmu_emulation",
            "estimate": False,
            "default": 200.0,
            "low": 200.0,
            "high": 1200.0,
            "at_low": 984.0,
            "at_high": 1984.0,
            "swing": 1000.0,
        },
        {
            "cost": "vm_exit",
            "estimate": False,
            "default": 600.0,
            "low": 400.0,
            "high": 900.0,
            "at_low": 784.0,
            "at_high": 1284.0,
            "swing": 500.0,
        },
    ]


def test_unknowns_are_the_ranges_and_estimates_and_go_through_the_costs_table() -> None:
    known = unknowns()
    names = {u.name for u in known}
    assert {"pmi_injection", "host_nmi_handler", "vm_exit"} <= names  # estimates, a range
    assert all(u.low < u.high or u.estimate for u in known)
    with pytest.raises(ConfigError, match="--cost = 'nope'"):
        unknowns(names=["nope"])
    (seed,) = prepare(select(discover(CONFIGS), ["register"]))
    # an end equal to the default is the baseline run: only vm_exit's two ends and
    # kvm_pmu_emulation's high end run again, each as a [costs] override
    todo = variants(seed, unknowns(names=["vm_exit", "kvm_pmu_emulation"]))
    assert [(n, v) for n, v, _ in todo] == [
        ("vm_exit", 400.0),
        ("vm_exit", 900.0),
        ("kvm_pmu_emulation", 1200.0),
    ]
    assert todo[0][2]["costs"] == {"vm_exit": 400.0}


def test_a_cost_outside_its_range_is_refused_as_a_user_would_be() -> None:
    (seed,) = prepare(select(discover(CONFIGS), ["register"]))
    bad = apply(seed.data, [("costs.vm_exit", 1e6)])
    with pytest.raises(ConfigError, match=r"costs\.vm_exit = 1000000"):
        reproduce_module.seed_figures(seed, bad)


def test_costs_change_a_perf_run_s_counts_so_sensitivity_reruns() -> None:
    """Why no re-pricing of the baseline ledger: the guest's PMI handler is timed with
    the cost table (guest_perf/meter.py), so a dearer host NMI handler changes when
    the guest's counters overflow and how many PMIs it takes."""
    sets = ["machine.vcpus=1", "workload.duration_ms=100", "workload.workers=1"]
    data, _ = configured(CONFIGS / "seed-mediated-table.toml", sets)
    data = apply(data, [("strategy", {"name": "emulated"})])
    lo = run(apply(data, [("costs.host_nmi_handler", 1000.0)]))
    hi = run(apply(data, [("costs.host_nmi_handler", 5000.0)]))
    assert lo.ledger != hi.ledger
    assert (lo.pmis, hi.pmis) == ([744], [747])


def test_sensitivity_library_skips_nothing_it_names(tmp_path: Path) -> None:
    seeds = prepare(select(discover(CONFIGS), ["register"]))
    # the DS-buffer reservation of the host's only event, 5-65 µs per CPU (an estimate)
    result = sensitivity(seeds, unknowns(names=["ds_buffers_cpu"]))
    legacy, register = result.figures
    (swing,) = legacy.swings
    assert (swing.at_low, swing.at_high) == (935_800.0, 11_495_800.0)
    assert register.swings[0].swing == 0.0


def test_chart_numbers_keep_their_unit_and_published_digits() -> None:
    from vpmu_core.tornado import _fmt, axis_label, chart_name

    assert _fmt(10.45, 1.0, "%", 5) == "10.45%"  # as published, not 10.4%
    assert _fmt(47.6135, 1.0, "%") == "47.6%"
    assert _fmt(55_100.0, 1e6, "ms") == "55.1 µs"  # a time in its own unit, not 0.0551 ms
    assert axis_label("score", "basic-sampling (6 events)", "%") == (
        "overhead: the share of the score lost (%)"
    )
    assert axis_label("workload:x_ns", "one write", "µs") == "one write (µs)"
    seeds = prepare(select(discover(CONFIGS), ["register"]))
    fs = sensitivity(seeds, unknowns(names=["vm_exit"])).figures[1]
    assert chart_name(fs) == (
        "seed-register--one-guest-update-of-a-pmu-control-msr--register-oriented-v1-optimisation"
    )
