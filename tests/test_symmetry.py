"""Exact shortcuts, proven: symmetry classes and shards against the full simulation.

Why the whole RunResult: a shortcut that gets the counters right and one ledger
key wrong still prices a different overhead. Every cell runs the full serial
simulation (``symmetry = false``, one worker) and requires the JSON of the
shortcut's run -- symmetry on, serial and with two workers, and plain shards --
to be byte-identical. The matrix: strategies (with the mediated options) x event
counts x backends x host contention (none, NMI watchdog, a host perf record
overcommitting the counters); 4 vCPUs, 20 ms.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import vpmu_core as vpmu
from vpmu_core.machine import Machine
from vpmu_core.workloads import parallel
from vpmu_core.workloads.symmetry import fingerprint, symmetric_classes

ROOT = Path(__file__).parent.parent
STRATEGIES = [
    ("emulated-legacy", {}),
    ("emulated", {}),
    ("fastpath", {}),
    ("register", {}),
    ("mediated", {}),
    ("mediated", {"passthrough_controls": True}),
    ("mediated", {"switch": "every-exit"}),
]
CONTENTION = {
    "none": {},
    "watchdog": {"nmi_watchdog": True},
    "perf-record": {"perf_record": ["cycles", "instructions", "branches"] * 3},
}


def config(
    strategy: str,
    options: dict[str, Any],
    events: int,
    backend: str,
    contention: str,
    *,
    workers: int = 1,
    symmetry: bool = True,
    vcpus: int = 4,
    ms: float = 20,
) -> dict[str, Any]:
    data = tomllib.loads((ROOT / "configs" / "seed-mediated-table.toml").read_text())
    data.pop("compare")
    data["machine"]["vcpus"] = vcpus
    data["host"] = {"pcpus": vcpus, "hz": 1000, **CONTENTION[contention]}
    if backend == "amd":
        data["pmu"] = {"backend": "amd"}
    # the seed's mediated PMU is the RFC's: a 6.20 one refuses the v5 guest
    mode = {"mode": "rfc"} if strategy == "mediated" else {}
    data["strategy"] = {"name": strategy, **mode, **options}
    data["workload"] |= {
        "events": ["instructions"] * events,
        "duration_ms": ms,
        "workers": workers,
        "symmetry": symmetry,
    }
    return data


CELLS = [
    pytest.param(s, o, e, b, c, id=f"{s}{''.join(f':{k}' for k in o)}-{e}-{b}-{c}")
    for s, o in STRATEGIES
    for e in (1, 6, 10)
    for b in ("intel", "amd")
    for c in CONTENTION
    if not (s == "mediated" and c != "none")  # the mediated PMU refuses host-wide events
]


@pytest.mark.parametrize(("strategy", "options", "events", "backend", "contention"), CELLS)
def test_every_shortcut_equals_the_full_simulation(
    strategy: str, options: dict[str, Any], events: int, backend: str, contention: str
) -> None:
    args = (strategy, options, events, backend, contention)
    full = vpmu.run(config(*args, symmetry=False)).model_dump_json()
    assert vpmu.run(config(*args)).model_dump_json() == full
    assert vpmu.run(config(*args, workers=2)).model_dump_json() == full
    assert vpmu.run(config(*args, workers=2, symmetry=False)).model_dump_json() == full


def test_the_listed_inequalities_are_gone() -> None:
    """host_mux_rotation (a host perf record overcommitting), counters_returned under
    register: each pCPU's rotations and each vCPU's teardown counted exactly once."""
    cell = ("register", {}, 6, "intel", "perf-record")
    full = vpmu.run(config(*cell, symmetry=False))
    two = vpmu.run(config(*cell, workers=2, symmetry=False))
    assert full.ledger["events"]["host_mux_rotation"] == 80  # 4 pCPUs x 20 rotations
    # the seed's guest has 8 GP and 3 fixed counters: 5 slices + teardown
    assert full.ledger["events"]["counters_returned"] == 4 * (8 + 3) * 6
    assert two.ledger == full.ledger


def test_identical_vcpus_fold_into_one_class_and_a_differing_one_stands_apart() -> None:
    m = Machine.from_dict(config("mediated", {}, 6, "intel", "none"))
    assert symmetric_classes(m, [0, 1, 2, 3]) == [[0, 1, 2, 3]]
    m.vcpus[2].wrmsr(0x186, 0x4300C0)  # vCPU 2's guest programmed a counter before the run
    assert fingerprint(m, 2) != fingerprint(m, 0)
    assert symmetric_classes(m, [0, 1, 2, 3]) == [[0, 1, 3], [2]]


def test_coupled_vcpus_take_no_shortcut() -> None:
    shared = config("mediated", {}, 6, "intel", "none")
    shared["host"]["pcpus"] = 2  # two vCPUs per pCPU: they compete for its counters
    assert symmetric_classes(Machine.from_dict(shared), [0, 1, 2, 3]) is None
    # two threads time-share each pCPU: coupled even by the fingerprint alone
    assert fingerprint(Machine.from_dict(shared), 0) == "coupled:0"
    moving = config("emulated", {}, 6, "intel", "watchdog")
    moving["host"]["migrate_every_slices"] = 1
    assert symmetric_classes(Machine.from_dict(moving), [0, 1, 2, 3]) is None
    varying = Machine.from_dict(config("mediated", {}, 6, "intel", "none"))
    assert symmetric_classes(varying, [0, 1, 2, 3], per_vcpu_variation=True) is None
    type(varying.strategy).symmetric = False  # a strategy that draws per vCPU
    try:
        assert symmetric_classes(varying, [0, 1, 2, 3]) is None
    finally:
        del type(varying.strategy).symmetric
    assert symmetric_classes(varying, [0, 1, 2, 3]) == [[0, 1, 2, 3]]


def test_a_unit_whose_events_all_went_away_falls_back_to_the_full_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """emulated-legacy releases and re-creates its events at every PMI: alone in its
    machine a vCPU's events all go away mid-run, so the key could have gone off in the
    full run; the units are thrown away and every vCPU simulated in full."""
    seen: list[str] = []
    real = parallel.run_units

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return real(*args, **kwargs)
        except parallel.KeyDropped as exc:
            seen.append(str(exc))
            raise

    monkeypatch.setattr(parallel, "run_units", spy)
    cell = ("emulated-legacy", {}, 6, "intel", "none")
    result = vpmu.run(config(*cell))
    assert seen and "released mid-run" in seen[0]
    monkeypatch.undo()
    assert result.model_dump_json() == vpmu.run(config(*cell, symmetry=False)).model_dump_json()
