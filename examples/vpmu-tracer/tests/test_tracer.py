"""The tracer: lines in the documented format, verdicts per strategy, nothing on the hot path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest

import vpmu_core as vpmu
from vpmu_core.testing.suite import *  # noqa: F403


def parse(text: str) -> list[tuple[str, list[int], str]]:
    """A replayer's reading of docs/trace-format.md: op, numbers, and the comment."""
    lines = []
    for line in text.splitlines():
        body, _, comment = line.partition("#")
        if not body.strip():
            continue
        op, *args = body.split()
        lines.append((op, [int(a, 0) for a in args], comment.strip()))
    return lines


def traced(tmp_path: Path, strategy: str, **top: Any) -> tuple[vpmu.Machine, Path]:
    path = tmp_path / "trace.txt"
    cfg = {
        "pmu": {"backend": "intel", "version": 2},
        "strategy": {"name": strategy},
        # the mediated PMU (as merged for 6.20) needs a v4+ host with full-width writes
        "host": {"version": 5, "full_width_writes": True} if strategy == "mediated" else {},
        "extensions": ["tracer"],
        "tracer": {"path": str(path)},
        **top,
    }
    return vpmu.Machine.from_dict(cfg), path


def test_every_access_is_a_line_with_its_verdict(tmp_path: Path) -> None:
    m, path = traced(tmp_path, "emulated")
    cpu = m.vcpus[0]
    cpu.wrmsr(0x186, 0x4300C0)
    assert cpu.rdmsr(0xC1) == 1
    cpu.rdpmc(0)
    with pytest.raises(vpmu.GuestFault):
        cpu.wrmsr(0x38F, 1 << 40)  # a reserved GLOBAL_CTRL bit
    m.extensions["tracer"].close()
    assert path.read_text() == (
        "wrmsr 0x186 0x4300c0 # exit\n"
        "rdmsr 0xc1 # exit\n"
        "rdpmc 0x0 # exit\n"
        "wrmsr 0x38f 0x10000000000 # exit gp\n"
    )
    assert parse(path.read_text())[0] == ("wrmsr", [0x186, 0x4300C0], "exit")


def test_mediated_counters_pass_through(tmp_path: Path) -> None:
    m, path = traced(tmp_path, "mediated")
    cpu = m.vcpus[0]
    cpu.wrmsr(0xC1, 5)
    cpu.rdpmc(0)
    m.extensions["tracer"].close()
    assert path.read_text() == "wrmsr 0xc1 0x5 # pass\nrdpmc 0x0 # pass\n"


def test_tracing_leaves_the_guest_view_alone(tmp_path: Path) -> None:
    plain = vpmu.Machine.from_dict({"pmu": {"backend": "intel", "version": 2}}).vcpus[0]
    m, _ = traced(tmp_path, "emulated")
    cpu = m.vcpus[0]
    for v in (plain, cpu):
        v.wrmsr(0x186, 0x4300C0)
        v.retire("instructions", 10)
    assert cpu.rdmsr(0xC1) == plain.rdmsr(0xC1)
    assert m.ledger.exits == plain.machine.ledger.exits
    m.extensions["tracer"].close()


def test_no_pluggy_call_per_access(tmp_path: Path) -> None:
    m, path = traced(tmp_path, "emulated")
    cpu = m.vcpus[0]

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a pluggy hook was called on the hot path")

    # Patched by hand around the accesses only: pytest itself runs on pluggy.
    original = pluggy.HookCaller.__call__
    pluggy.HookCaller.__call__ = forbidden  # type: ignore[method-assign]
    try:
        for _ in range(3):
            cpu.wrmsr(0x186, 0x4300C0)
            cpu.rdmsr(0xC1)
            cpu.rdpmc(0)
    finally:
        pluggy.HookCaller.__call__ = original  # type: ignore[method-assign]
    m.extensions["tracer"].close()
    assert len(path.read_text().splitlines()) == 9


def test_several_vcpus_need_a_placeholder(tmp_path: Path) -> None:
    with pytest.raises(vpmu.ConfigError, match=r"tracer.path"):
        traced(tmp_path, "emulated", machine={"vcpus": 2})
    cfg = {
        "pmu": {"backend": "amd"},
        "machine": {"vcpus": 2},
        "extensions": ["tracer"],
        "tracer": {"path": str(tmp_path / "t{vcpu}.txt")},
    }
    m = vpmu.Machine.from_dict(cfg)
    m.vcpus[1].rdmsr(0xC0000301)
    m.extensions["tracer"].close()
    assert (tmp_path / "t1.txt").read_text() == "rdmsr 0xc0000301 # exit\n"
    assert (tmp_path / "t0.txt").read_text() == ""
