"""The fuzzing campaign: a small budget over every shipped config on every run, and the
campaign's own machinery (determinism, each check firing, shrinking, reproducers).

The full campaign is ``python benchmarks/fuzz.py --ops 1000000`` (docs/fuzzing.md).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from vpmu_core.counters import Pmc
from vpmu_core.testing import fuzz
from vpmu_core.testing.fuzz.ops import ADVANCE, CPL, FORK, RETIRE, SNAPSHOT, WRMSR
from vpmu_core.testing.shrink import ddmin

# The three tests below plant a bug by patching Pmc, which the compiled engine's own
# callers never look up: they run where Pmc is Python (the pure-Python CI stage).
pure_pmc = pytest.mark.skipif(
    not str(sys.modules[Pmc.__module__].__file__).endswith(".py"),
    reason="plants a bug by patching Pmc; compiled callers do not see the patch",
)

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("configs/*.toml"))
BUDGET = 1500  # operations per config and variant: a few seconds for all of them


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _target(path: str = "configs/intel-kvm.toml") -> fuzz.Target:
    return fuzz.targets([path], variants=False)[0]


@pytest.mark.fuzz
@pytest.mark.parametrize("path", CONFIGS)
def test_small_campaign(path: str) -> None:
    for t in fuzz.targets([path]):
        r = fuzz.campaign(t, BUDGET, seed=0, shrink_seconds=2)
        assert r.ops == BUDGET
        broken = {s: f for s, f in r.found.items() if f.failure.violation}
        assert not broken, "\n\n".join(
            f"{t.name}: {s}: {f.failure.detail}\n{fuzz.reproducer(t, f.ops)}"
            for s, f in broken.items()
        )


def test_campaigns_are_deterministic_in_the_seed() -> None:
    t = _target()
    a = fuzz.generate(random.Random("7"), t, 500)
    assert a == fuzz.generate(random.Random("7"), t, 500)
    assert a != fuzz.generate(random.Random("8"), t, 500)
    r1, r2 = fuzz.campaign(t, 3000, seed=3), fuzz.campaign(t, 3000, seed=3)
    assert (r1.ops, r1.faults, r1.exceptions, r1.violations) == (
        r2.ops,
        r2.faults,
        r2.exceptions,
        r2.violations,
    )


def test_the_operations_cover_what_the_issue_lists() -> None:
    t = _target()
    ops = fuzz.generate(random.Random("cover"), t, 20_000)
    kinds = {op[0] for op in ops}
    assert kinds == set(range(12))
    ecx_high = {op[2] >> 29 for op in ops if op[0] == 2}
    assert ecx_high == set(range(8))  # RDPMC with every combination of bits 29-31
    assert any(op[0] == WRMSR and op[2] not in t.msrs for op in ops)  # random MSR numbers
    assert any(op[0] == WRMSR and op[3] >= 1 << 63 for op in ops)  # 64-bit values
    assert {op[4] for op in ops if op[0] == RETIRE} == {0, 1, 2, 3}


def test_item6_no_longer_diverges() -> None:
    # issue 11 item 6's reproducer, with a fork before the work
    t = _target()
    ins = t.events.index("instructions")
    ops: list[fuzz.Op] = [
        (WRMSR, 0, 0x38F, 0x7000000FF, 0),
        (WRMSR, 0, 0x38D, 0xB0, 0),
        (WRMSR, 0, 0x38D, 0, 0),
        *((WRMSR, 0, 0x186 + i, 0x4300C0, 0) for i in range(8)),
        (FORK, 0, 0, 0, 0),
        (RETIRE, 0, ins, 1000, 3),
    ]
    # before the host fix: paused-holds-counter, "counters.7.value: 1 vs restored 1001"
    assert fuzz.run_ops(t, ops).failure is None


@pure_pmc
def test_an_escaping_exception_is_caught_and_shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Pmc, n: int) -> None:
        if n == 77:
            raise KeyError("boom")
        self.value = (self.value + n) & self.mask

    monkeypatch.setattr(Pmc, "advance", broken)
    t = _target()
    ins = t.events.index("instructions")
    noise = fuzz.generate(random.Random("n"), t, 300)
    noise = [op for op in noise if op[0] not in (RETIRE, FORK, SNAPSHOT)]
    ops = [
        *noise,
        (CPL, 0, 0, 0, 0),
        (WRMSR, 0, 0x38F, 0xFF, 0),
        (WRMSR, 0, 0x186, 0x4300C0, 0),
        (RETIRE, 0, ins, 77, 0),
    ]
    f = fuzz.run_ops(t, ops).failure
    assert f is not None and f.kind == "exception" and "KeyError" in f.detail
    small = ddmin(
        ops,
        lambda sub: (g := fuzz.run_ops(t, sub).failure) is not None and g.signature == f.signature,
        seconds=30,
    )
    assert len(small) <= 4 and small[-1] == (RETIRE, 0, ins, 77, 0)


@pure_pmc
def test_a_counter_beyond_its_width_is_an_invariant_violation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unmasked(self: Pmc, n: int) -> None:
        self.value += n

    monkeypatch.setattr(Pmc, "advance", unmasked)
    t = _target()
    ops: list[fuzz.Op] = [
        (WRMSR, 0, 0x38F, 0xFF, 0),
        (WRMSR, 0, 0x186, 0x4300C0, 0),
        (RETIRE, 0, t.events.index("instructions"), 1 << 50, 0),
    ]
    f = fuzz.run_ops(t, ops).failure
    assert f is not None and f.kind == "invariant" and f.op_index == 2
    assert f.detail == "vCPU 0 gp0 = 0x4000000000001, width 48"


@pure_pmc
def test_a_restore_that_changes_state_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pmc, "load", lambda self, state: setattr(self, "value", 1))
    t = _target()
    f = fuzz.run_ops(t, [(SNAPSHOT, 0, 0, 0, 0)]).failure
    assert f is not None and f.kind == "restore-changed"


def test_ddmin_finds_a_minimal_pair() -> None:
    items = list(range(100))
    assert ddmin(items, lambda s: 13 in s and 71 in s) == [13, 71]
    assert ddmin(items, lambda s: len(s) >= 1 and s[0] == 0) == [0]


def test_the_reproducer_replays_the_divergence(tmp_path: Path) -> None:
    t = _target()
    ops: list[fuzz.Op] = [
        (WRMSR, 0, 0x38F, 0x7000000FF, 0),
        (WRMSR, 0, 0x38D, 0xB0, 0),
        (WRMSR, 0, 0x38D, 0, 0),
        *((WRMSR, 0, 0x186 + i, 0x4300C0, 0) for i in range(8)),
        (FORK, 0, 0, 0, 0),
        (RETIRE, 0, t.events.index("instructions"), 1000, 3),
        (WRMSR, 0, 0x186, 1 << 21, 0),  # a #GP: printed, the script goes on
    ]
    script = tmp_path / "repro.py"
    script.write_text(fuzz.reproducer(t, ops))
    res = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    lines = res.stdout.splitlines()
    assert "#GP  |  #GP" in lines
    assert "'7': {'value': 1}" in lines[-2] or "'7': {'value': 1001}" in lines[-2]


def test_the_benchmark_prints_the_table() -> None:
    res = subprocess.run(
        [sys.executable, "benchmarks/fuzz.py", "--ops", "500", "--config", "configs/amd-zen4.toml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "configs/amd-zen4.toml+watchdog+perf-record" in res.stdout
    assert "1,000 operations" in res.stdout and "0 exceptions, 0 invariant violations" in res.stdout


def test_a_paused_counter_held_only_between_fork_and_comparison_is_item6() -> None:
    # found by the 1,000,000-operation campaign (seed 0): PERFEVTSEL1 enabled then
    # disabled (its event paused, holding its host counter), more events enabled after
    # the fork, then 19 ms of host time whose slice ends release the paused event again
    t = fuzz.targets(["configs/amd-zen3.toml"])[1]
    ops: list[fuzz.Op] = [
        (WRMSR, 0, 0xC0010206, 0x4200C3, 0),
        (WRMSR, 0, 0xC0010208, 0x4700C3, 0),
        (WRMSR, 0, 0xC0010202, 0x5300C0, 0),
        (WRMSR, 0, 0xC0010202, 0x4B, 0),
        (FORK, 0, 0, 0, 0),
        (WRMSR, 0, 0xC0010000, 0x4100C0, 0),
        (WRMSR, 0, 0xC001020A, 0x2CC76CB1B2646A0D, 0),
        (WRMSR, 0, 0xC0010002, 0x80530076, 0),
        (RETIRE, 0, t.events.index("cycles"), 16, 2),
        (ADVANCE, 0, 19435666, 0, 0),
    ]
    assert fuzz.run_ops(t, ops).failure is None  # before the host fix: paused-holds-counter


def test_guest_events_starved_in_their_task_context_are_contention() -> None:
    # found by the 1,000,000-operation campaign (seed 0) once guest-backing events became
    # task events of their vCPU thread: the watchdog takes one of the host's 4 GP counters,
    # the guest enables PMC2, PMC3, PMC1, PMC0 in that order and perf gives the first
    # three the rest; the restore re-creates them in index order (as KVM reprograms a
    # restored PMU, for_each_set_bit over reprogram_pmi), so PMC3 starves instead of PMC0.
    # The starved event lives in the running thread's task context, not the pCPU's.
    t = _target("configs/host-contention.toml")
    ops: list[fuzz.Op] = [
        *(
            (WRMSR, 0, sel, value, 0)
            for sel, value in ((0x188, 0x400300), (0x189, 0x4200F7), (0x187, 0x400064))
        ),
        (WRMSR, 0, 0x186, 0x4B00C0, 0),
        (FORK, 0, 0, 0, 0),
        (RETIRE, 0, t.events.index("instructions"), 5, 1),
    ]
    f = fuzz.run_ops(t, ops).failure
    assert f is not None and f.kind == "divergence:contention" and not f.violation
    assert f.detail == "vCPU 0: counters.0.value: 1 vs restored 6"
