"""The suite tested: each deliberately broken backend fails the rule it breaks.

Each case runs the real suite (``vpmu_core.testing.suite``) in a pytester session
whose conftest answers ``pytest_vpmu_plugin_manager`` with a manager holding the
broken backends, restricted with ``--vpmu-backend`` to one of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent / "conformance_broken"

CONFTEST = """
import vpmu_core as vpmu
import vpmu_amd
import vpmu_core.builtins
import broken_backends


def pytest_vpmu_plugin_manager(config):
    return vpmu.PluginManager(
        entry_points=False,
        plugins=[
            ("core", vpmu_core.builtins), ("amd", vpmu_amd), ("broken", broken_backends)
        ],
    )
"""

SUITE = "from vpmu_core.testing.suite import *  # noqa: F403\n"


def _broken() -> dict[str, tuple[str, list[str]]]:
    import sys

    sys.path.insert(0, str(HERE))
    try:
        from broken_backends import BROKEN
    finally:
        sys.path.remove(str(HERE))
    return dict(BROKEN)


BROKEN = _broken()


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(HERE)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_suite_catches_a_broken_backend(suite: pytest.Pytester, name: str) -> None:
    rule, must_fail = BROKEN[name]
    result = suite.runpytest_inprocess(
        "--vpmu-backend", name, "-k", " or ".join(must_fail), "-p", "no:cacheprovider"
    )
    failed = {r.nodeid.split("::")[-1].split("[")[0] for r in result.reprec.getfailures()}  # type: ignore[attr-defined]
    assert set(must_fail) <= failed, f"{name} breaks {rule!r}; failed only {sorted(failed)}"


def test_the_unbroken_base_passes_the_same_tests(suite: pytest.Pytester) -> None:
    """The same tests pass on the AMD backend the broken ones derive from, via the same path."""
    tests = sorted({t for _, ts in BROKEN.values() for t in ts})
    result = suite.runpytest_inprocess(
        "--vpmu-backend", "amd", "-k", " or ".join(tests), "-p", "no:cacheprovider"
    )
    assert result.ret == 0
    assert result.parseoutcomes()["passed"] >= len(tests)


def test_every_rule_has_a_broken_backend() -> None:
    rules = {rule for rule, _ in BROKEN.values()}
    assert rules == {
        "MSR map agrees with CPUID",
        "write/read masks to the width",
        "overflow, status and PMI",
        "snapshot/restore is differential",
        "any access raises nothing but GuestFault",
        "event filter allow/deny",
        "event-select qualifiers count cycles and edges",
        "HostOnly/GuestOnly are dropped on a guest write",
    }
