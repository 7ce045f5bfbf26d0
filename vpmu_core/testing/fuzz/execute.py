"""Executing operations on a machine and its fork, checking every rule after each one."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import GuestFault
from ...host import GUEST
from ...machine import Machine
from .ops import (
    ADVANCE,
    CPL,
    CPUID,
    FORK,
    MIGRATE,
    NAMES,
    PCE,
    RDMSR,
    RDPMC,
    RETIRE,
    SCHED,
    SNAPSHOT,
    WRMSR,
    Op,
    Target,
)

FAULT = -1  # the answer of an operation that took a GuestFault


# ------------------------------------------------------------------ execution
@dataclass(frozen=True)
class Failure:
    """What went wrong; ``kind`` is what shrinking keeps constant."""

    kind: str  # "exception" | "invariant" | "divergence" | "restore-changed"
    detail: str
    op_index: int

    @property
    def signature(self) -> str:
        if self.kind == "exception":
            return f"exception:{self.detail.split(':', 1)[0]}"
        return self.kind

    @property
    def violation(self) -> bool:
        """A broken rule; a divergence under host contention is not one (see HOST_STATES)."""
        return self.kind != "divergence:contention"


#: How a divergence is told apart by the host's state at the fork and at the comparison.
#: ``paused-holds-counter``: a paused guest event kept its host counter while an active
#: one on that pCPU had none -- Linux's perf_event_pause() frees it (issue 11 item 6).
#: ``contention``: the original and the fork starve different active guest events
#: (no host counter): pinned events beyond the host's counters, where perf schedules
#: whichever was created first, and a restore creates them in index order (KVM
#: reprograms a restored PMU with for_each_set_bit over reprogram_pmi) -- Linux
#: diverges there too, so it is reported, not counted as a violation. Guest events
#: are task events of their vCPU thread: a pCPU's are its cpu context's and its
#: running thread's.
HOST_STATES = ("paused-holds-counter", "contention")


@dataclass
class Outcome:
    ops: int = 0
    faults: int = 0
    failure: Failure | None = None


class Run:
    """One machine (or a machine and its fork) executing a list of operations."""

    def __init__(self, t: Target) -> None:
        self.t = t
        self.a = t.machine()
        self.b: Machine | None = None
        self.answers_a: list[int] = []
        self.answers_b: list[int] = []
        self.pmis_at_fork: list[tuple[int, int]] = []
        self.seen: set[str] = set()
        self.watch = False  # sample the host's state after every forked operation

    def execute(self, ops: Sequence[Op], stop: Callable[[], bool] | None = None) -> Outcome:
        out = Outcome()
        for i, op in enumerate(ops):
            if op[0] == FORK:
                failure = self._compare(i) or self._fork(i)
            else:
                failure = self._step(self.a, op, i, self.answers_a, out)
                if failure is None and self.b is not None:
                    failure = self._step(self.b, op, i, self.answers_b, None)
                    if self.watch and self.b is not None:
                        self.seen |= _host_state(self.a, self.b)
            out.ops += 1
            if failure is not None:
                out.failure = self._classified(failure, ops)
                return out
            if stop is not None and not i & 0xFF and stop():
                break
        failure = self._compare(len(ops))
        out.failure = None if failure is None else self._classified(failure, ops)
        return out

    def _classified(self, failure: Failure, ops: Sequence[Op]) -> Failure:
        """A divergence no sampled host state explains is replayed with the host's state
        sampled after every operation: a paused event may have held its counter only
        for a while between the fork and the comparison."""
        if failure.kind != "divergence" or self.watch:
            return failure
        again = Run(self.t)
        again.watch = True
        found = again.execute(ops[: failure.op_index + 1]).failure
        return found if found is not None and found.kind.startswith("divergence") else failure

    def _step(
        self, m: Machine, op: Op, i: int, answers: list[int], out: Outcome | None
    ) -> Failure | None:
        k, vi, a, b, c = op
        v = m.vcpus[vi]
        answer = 0
        try:
            if k == WRMSR:
                v.wrmsr(a, b)
            elif k == RDMSR:
                answer = v.rdmsr(a)
            elif k == RDPMC:
                answer = v.rdpmc(a)
            elif k == RETIRE:
                v.retire(self.t.events[a], b, c)
            elif k == CPL:
                v.cpl = a
            elif k == PCE:
                v.cr4_pce = bool(a)
            elif k == SCHED:
                m.host.sched_out(v)
                m.host.sched_in(v)
            elif k == MIGRATE:
                m.host.migrate(v, a)
            elif k == ADVANCE:
                m.host.advance(m.host.now_ns + a)
            elif k == CPUID:
                regs = v.cpuid(a, b)
                answer = regs[0] ^ regs[1] << 32 ^ regs[2] << 64 ^ regs[3] << 96
            elif k == SNAPSHOT:
                before = v.snapshot().model_dump_json()
                v.restore(before)
                after = v.snapshot().model_dump_json()
                if after != before:
                    return Failure("restore-changed", _diff(before, after), i)
        except GuestFault:
            answer = FAULT
            if out is not None:
                out.faults += 1
        except Exception as exc:
            return Failure("exception", f"{type(exc).__name__}: {exc} ({_where(exc)})", i)
        if not (answer == FAULT or 0 <= answer < 1 << (128 if k == CPUID else 64)):
            return Failure("invariant", f"{NAMES[k]} answered {answer!r}", i)
        answers.append(answer)
        for each in (v,) if k < SCHED or k > ADVANCE else m.vcpus:
            for pmc in each.counters.values():
                if not 0 <= pmc.value < 1 << pmc.width:
                    return Failure(
                        "invariant",
                        f"vCPU {each.index} {pmc.name} = {pmc.value:#x}, width {pmc.width}",
                        i,
                    )
            for pmc in each.views:
                if not 0 <= pmc.value < 1 << pmc.width:
                    return Failure(
                        "invariant",
                        f"vCPU {each.index} {pmc.name} = {pmc.value:#x}, width {pmc.width}",
                        i,
                    )
        return None

    def _fork(self, i: int) -> Failure | None:
        """Snapshot every vCPU of the original to JSON; restore them into a fresh machine
        placed like it (same host time, same pCPUs); from now on both run every op."""
        try:
            b = fork_of(self.a, self.t.machine())
        except Exception as exc:
            return Failure("exception", f"{type(exc).__name__}: {exc} ({_where(exc)})", i)
        self.b = b
        self.seen = _host_state(self.a, b)
        self.answers_a, self.answers_b = [], []
        self.pmis_at_fork = [(len(v.pmis), v.pmis_dropped) for v in self.a.vcpus]
        return None

    def _compare(self, i: int) -> Failure | None:
        b = self.b
        if b is None:
            return None
        self.b = None
        found = self._differ(b, i)
        if found is None:
            return None
        states = self.seen | _host_state(self.a, b)
        for state in HOST_STATES:
            if state in states:
                return Failure(f"divergence:{state}", found.detail, i)
        return found

    def _differ(self, b: Machine, i: int) -> Failure | None:
        if self.answers_a != self.answers_b:
            j = next(
                j
                for j, (x, y) in enumerate(zip(self.answers_a, self.answers_b, strict=True))
                if x != y
            )
            return Failure(
                "divergence",
                f"answer {j} after the fork: {_ans(self.answers_a[j])} "
                f"vs restored {_ans(self.answers_b[j])}",
                i,
            )
        for va, vb, (p0, d0) in zip(self.a.vcpus, b.vcpus, self.pmis_at_fork, strict=True):
            sa, sb = va.snapshot().model_dump_json(), vb.snapshot().model_dump_json()
            if sa != sb:
                return Failure("divergence", f"vCPU {va.index}: {_diff(sa, sb)}", i)
            if (len(va.pmis) - p0, va.pmis_dropped - d0) != (len(vb.pmis), vb.pmis_dropped):
                return Failure(
                    "divergence",
                    f"vCPU {va.index}: PMIs {len(va.pmis) - p0} vs restored {len(vb.pmis)}",
                    i,
                )
        return None


def fork_of(a: Machine, b: Machine) -> Machine:
    """``b``, a fresh machine of ``a``'s config, made ``a``'s continuation: the same host
    time and vCPU placement, every vCPU restored from ``a``'s snapshot as JSON."""
    snaps = [v.snapshot().model_dump_json() for v in a.vcpus]
    _same_clock(b.host, a.host)
    for v in b.vcpus:
        pcpu = a.host.pcpu_of(a.vcpus[v.index])
        if b.host.pcpu_of(v) != pcpu:
            b.host.migrate(v, pcpu)
    for v, snap in zip(b.vcpus, snaps, strict=True):
        v.restore(snap)
    return b


def _same_clock(b: Any, a: Any) -> None:
    """Put a fresh host at the original's time and phase (next tick, rotation, slice).

    A restore moves vCPU state, not the host's clock; without this the fork's first
    time slice would end at another moment than the original's and every comparison
    would measure the host's phase, not the restore. Advancing the fresh host through
    the original's whole history instead would cost more than the episode itself.
    """
    for name in ("now_ns", "_next_slice", "_next_mux", "_next_tick", "_slices"):
        setattr(b, name, getattr(a, name))
    for cb, ca in zip(b.pcpus, a.pcpus, strict=True):
        cb.rotation = ca.rotation


def _host_state(a: Machine, b: Machine) -> set[str]:
    """Which of :data:`HOST_STATES` the host of the original and of the fork are in now.

    ``contention`` only when the two starve different guest events: perf gave the
    counters to other events in each, which is what makes their counts differ.
    """
    states: set[str] = set()
    starved = []
    for m in (a, b):
        state, who = _starved(m)
        if state is not None:
            states.add(state)
        starved.append(who)
    if starved[0] != starved[1]:
        states.add(HOST_STATES[1])
    return states


def _starved(m: Machine) -> tuple[str | None, frozenset[tuple[int, str]]]:
    """Whether a paused guest event holds a counter while an active one on its pCPU has
    none, and which active guest events have no counter (vCPU index, PMC name)."""
    state = None
    who: set[tuple[int, str]] = set()
    host = m.host
    for cpu in host.pcpus:
        # Guest-backing events are task events of their vCPU thread: on a pCPU compete
        # its cpu context's and the running thread's task context's (Host._candidates).
        task = host.tasks.get(cpu.current.index, []) if cpu.current is not None else []
        guest = [e for e in (*cpu.events, *task) if e.owner == GUEST]
        hungry = [e for e in guest if not e.paused and not e.running]
        if hungry and any(e.paused and e.running for e in guest):
            state = HOST_STATES[0]
        who |= {(e.vcpu.index if e.vcpu else -1, getattr(e.pmc, "name", "?")) for e in hungry}
    return state, frozenset(who)


def _ans(a: int) -> str:
    return "#GP" if a == FAULT else f"{a:#x}"


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return "?"
    code = last.tb_frame.f_code
    return f"{Path(code.co_filename).name}:{last.tb_lineno} in {code.co_name}"


def _diff(a: str, b: str) -> str:
    """The first differing leaf of two snapshot JSON documents."""

    def walk(x: Any, y: Any, path: str) -> str | None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                found = walk(x.get(key), y.get(key), f"{path}.{key}")
                if found:
                    return found
            return None
        if x != y:
            return f"{path.lstrip('.')}: {x!r} vs restored {y!r}"
        return None

    return walk(json.loads(a), json.loads(b), "") or "snapshots differ"


def run_ops(t: Target, ops: Sequence[Op]) -> Outcome:
    """Execute ``ops`` on a fresh machine of ``t`` (what shrinking and reproducers call)."""
    return Run(t).execute(ops)
