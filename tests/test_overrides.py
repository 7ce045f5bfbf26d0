"""``--set`` and ``--param``: one value syntax, one override function for every command.

Why exact: a sweep of ``workload.events=6*instructions,10*instructions`` that read
as one string, or split ``"a,b"`` in two, would run configs nobody asked for.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from vpmu_core.cli import app
from vpmu_core.errors import ConfigError
from vpmu_core.overrides import (
    apply,
    configured,
    parse_param,
    parse_set,
    parse_strategies,
    split_values,
    value,
)
from vpmu_core.units import duration, event, figure, percent, time_unit

ROOT = Path(__file__).resolve().parent.parent
REGISTER = ROOT / "tests" / "configs" / "one-write.toml"


def test_values_read_as_toml_lists_or_text() -> None:
    assert value("4000") == 4000
    assert value("0x10") == 16
    assert value("1.5") == 1.5
    assert value("true") is True
    assert value("every-exit") == "every-exit"
    assert value("6*instructions") == ["instructions"] * 6
    assert value("instructions+cycles") == ["instructions", "cycles"]
    assert value("2*instructions+cycles") == ["instructions", "instructions", "cycles"]
    assert value("1*cycles") == ["cycles"]
    assert value('["a", "b"]') == ["a", "b"]
    assert value('"a+b"') == "a+b"  # quoted: a string, whatever it holds
    assert value("1e+5") == 100000.0  # a TOML number before any list syntax


def test_param_values_split_at_top_level_commas_only() -> None:
    assert split_values("6*instructions,10*instructions") == ["6*instructions", "10*instructions"]
    assert split_values('["a","b"],["c"]') == ['["a","b"]', '["c"]']
    assert split_values('"a,b",c') == ['"a,b"', "c"]
    assert parse_param("workload.freq=250, 1000") == ("workload.freq", ["250", "1000"])
    with pytest.raises(ConfigError, match="each value once"):
        parse_param("workload.freq=250,250")
    with pytest.raises(ConfigError, match="a value is empty"):
        parse_param("workload.freq=250,")
    with pytest.raises(ConfigError, match="KEY=V1,V2"):
        parse_param("workload freq=1")


@given(st.lists(st.text(alphabet="abc,[]\"' ", max_size=6), min_size=1, max_size=4))
def test_split_values_never_loses_a_character(parts: list[str]) -> None:
    text = ",".join(parts)
    assert ",".join(split_values(text)).replace(" ", "") == text.replace(" ", "")


def test_set_applies_dotted_keys_to_a_copy() -> None:
    data = {"workload": {"freq": 1}}
    out = apply(data, [parse_set("workload.freq=4000"), parse_set("machine.vcpus=4")])
    assert out == {"workload": {"freq": 4000}, "machine": {"vcpus": 4}}
    assert data == {"workload": {"freq": 1}}
    with pytest.raises(ConfigError, match=r"workload\.freq is a value, not a table"):
        apply(data, [("workload.freq.x", 1)])
    with pytest.raises(ConfigError, match="the value is empty"):
        parse_set("workload.freq=")


def test_configured_reads_the_file_and_applies_sets() -> None:
    data, source = configured(REGISTER, ["workload.writes=3"])
    assert source == str(REGISTER)
    assert data["workload"]["writes"] == 3
    assert tomllib.loads(REGISTER.read_text())["workload"]["writes"] == 1


def test_a_strategy_named_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="each strategy once: emulated is named twice"):
        parse_strategies("emulated,emulated")
    assert len(parse_strategies("emulated,emulated:reprogram_on_pmi=cpu-changed")) == 2


def test_one_number_format() -> None:
    assert percent(210566.0) == "2,106× guest time"
    assert percent(4.2412) == "4.24%"
    assert duration(21_000_000.0) == "21.0 ms"
    assert duration(800.0) == "800 ns"
    assert duration(2496.0) == "2.50 µs"
    assert event((0xC0, 0x00)) == "0xC0/0x00"
    assert event((0xC0, 0x00), {"instructions": [(0xC0, 0x00)]}) == "instructions"
    # one time table for the text and the tornado charts' axes
    assert [time_unit(ns) for ns in (85e6, 999.0, 0.5, -2e9)] == [
        (1e6, "ms"),
        (1.0, "ns"),
        (1.0, "ns"),
        (1e9, "s"),
    ]
    assert figure(4.2412, "%") == "4.24%" and figure(400.0, "ns") == "400 ns"
    assert figure(5198, "samples") == "5,198 samples" and figure(None, "ns") == "n/a"


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_run_takes_set_and_verbose_after_the_command() -> None:
    code, out = cli("run", str(REGISTER), "--set", "workload.writes=3", "-v")
    assert code == 0, out
    assert "per operation (3 operations)" in out
    assert "one-time: 21.0 ms perf:create_sched_rcu, the first perf event on a host" in out
    assert "%" not in out.split("overhead (steady state):")[1].splitlines()[0]


def test_compare_errors_name_the_file_and_duplicates_are_refused() -> None:
    code, out = cli("compare", str(REGISTER), "--set", "workload.writes=0")
    assert code == 2
    assert out.startswith(f"error: {REGISTER}: workload.writes = 0")
    code, out = cli("compare", str(REGISTER), "--strategies", "register,register")
    assert code == 2 and "each strategy once" in out


def test_compare_without_strategies_runs_every_installed_one(tmp_path: Path) -> None:
    # the fixture has no [compare] table naming its columns
    assert "compare" not in tomllib.loads(REGISTER.read_text(encoding="utf-8"))
    code, out = cli("compare", str(REGISTER))
    assert code == 0, out
    for name in ("emulated-legacy", "emulated", "register", "fastpath"):
        assert name in out
    # the host PMU of this config (v2, as its guest's) cannot back the mediated PMU
    assert "mediated: n/a (host.version = 2: the mediated PMU needs an Intel host PMU" in out


def test_verbose_sink_is_removed_after_the_command() -> None:
    """A -v sink on a CliRunner's stream, kept after the command, logged into the
    next command's closed stream ("I/O operation on closed file")."""
    from loguru import logger

    before = len(logger._core.handlers)  # type: ignore[attr-defined]
    code, out = cli("run", str(REGISTER), "-v")
    assert code == 0, out
    code, out = cli("-v", "run", str(REGISTER), "-v")
    assert code == 0, out
    assert len(logger._core.handlers) <= before  # type: ignore[attr-defined]
    code, out = cli("run", str(REGISTER))
    assert code == 0 and "Logging error" not in out and "closed file" not in out


def test_help_shows_the_compare_table_name() -> None:
    code, out = cli("compare", "--help")
    assert code == 0 and "[compare]" in out


def test_the_readout_names_the_guest_time_once() -> None:
    from types import SimpleNamespace

    from vpmu_core.cli.readout import steady

    starved = SimpleNamespace(steady_ns=203e6, steady_pct=889_200.0, guest_ns=22_830.0)
    assert steady(starved, None) == "203 ms = 8,892× the 22.8 µs of guest time"
    usual = SimpleNamespace(steady_ns=1.23e6, steady_pct=4.2412, guest_ns=29e6)
    assert steady(usual, None) == "1.23 ms = 4.24% of 29.0 ms guest time"


def test_the_readout_says_when_the_vpmu_starved_the_guest() -> None:
    from types import SimpleNamespace

    from vpmu_core.cli.readout import STARVED, overhead_lines

    def cost(steady_pct: float) -> SimpleNamespace:
        return SimpleNamespace(
            steady_ns=203e6,
            steady_pct=steady_pct,
            guest_ns=22_830.0,
            dominant=None,
            one_time={},
            total_ns=203e6,
        )

    assert overhead_lines(cost(1000.0), None)[1] == STARVED
    assert STARVED not in overhead_lines(cost(999.99), None)
    # per operation, the guest's time is not the measure: nothing to say of it
    assert STARVED not in overhead_lines(cost(889_200.0), 2)
