"""What every conformance test module uses: fresh vCPUs, the whole machine, capability skips.

Its own module so the suite can be split by rule family (suite.py, qualifier_rules.py)
without an import cycle; suite.py re-exports the test classes a plugin collects.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..counters import Pmc
from ..machine import Machine
from ..vcpu import Vcpu
from .plugin import MachineFactory


def vcpu_of(make: MachineFactory, **top: Any) -> Vcpu:
    """vCPU 0 of a fresh machine from the ``vpmu_machine`` factory."""
    return make(**top).vcpus[0]


def machine_of(v: Vcpu) -> Machine:
    """The machine a suite vCPU belongs to, with its host-side API (filters, guest drivers).

    A vCPU's ``machine`` is typed as the narrow port plugins see; the suite is the
    VM's user and drives the whole machine.
    """
    machine = v.machine
    assert isinstance(machine, Machine)
    return machine


def need(condition: bool, why: str) -> None:
    if not condition:
        pytest.skip(f"capability: {why}")


def gp(vcpu: Vcpu) -> list[Pmc]:
    """The vCPU's GP counters in index order; a list position is not an index (v6 holes)."""
    return sorted((p for p in vcpu.counters.values() if p.kind == "gp"), key=lambda p: p.idx)


def fixed(vcpu: Vcpu) -> list[Pmc]:
    """The vCPU's fixed counters in index order (``idx - FIXED_BASE`` is the fixed number)."""
    return sorted((p for p in vcpu.counters.values() if p.kind == "fixed"), key=lambda p: p.idx)
