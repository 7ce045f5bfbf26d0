"""The conformance suite's ``--vpmu-strategy name:key=value``: the options reach the strategy.

Why a pytester session: the option is parsed by the suite's pytest plugin and
turned into every machine's ``[strategy]`` table; only a real session shows that
the strategy built for a test carries the option, not just that a string parses.
"""

from __future__ import annotations

import pytest

from vpmu_core.errors import ConfigError
from vpmu_core.overrides import literal, parse_strategies, parse_strategy

PROBE = """
def test_strategy_options(vpmu_machine):
    cfg = vpmu_machine().config.strategy
    assert (cfg.name, cfg.reprogram_on_pmi) == ("emulated-legacy", "cpu-changed")
"""


def test_vpmu_strategy_options_reach_every_machine(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest(
        "--vpmu-backend", "intel", "--vpmu-strategy", "emulated-legacy:reprogram_on_pmi=cpu-changed"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] >= 1


def test_a_malformed_vpmu_strategy_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest("--vpmu-backend", "intel", "--vpmu-strategy", "emulated:oops")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--vpmu-strategy = 'emulated:oops': options are name*"])


def test_one_syntax_for_compare_and_the_suite() -> None:
    assert parse_strategy("emulated-legacy:reprogram_on_pmi=cpu-changed:x=0x10") == (
        "emulated-legacy",
        {"reprogram_on_pmi": "cpu-changed", "x": 16},
    )
    assert parse_strategies("emulated, fastpath:a=true:b=1.5") == [
        ("emulated", {}),
        ("fastpath", {"a": True, "b": 1.5}),
    ]
    assert [literal(t) for t in ("true", "7", "1e3", "'q'", "cpu-changed")] == [
        True,
        7,
        1000.0,
        "q",
        "cpu-changed",
    ]
    for bad in ("", " , ", ":k=v", "x:k"):
        with pytest.raises(ConfigError):
            parse_strategies(bad)
