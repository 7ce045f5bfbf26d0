"""What a campaign drives: the configs (targets) and random operations on them.

An operation is a plain tuple ``(kind, vcpu, a, b, c)`` so that generating and
replaying a million of them costs no object per operation. Values are drawn mostly
in the shape of the register written (an event select, a GLOBAL_CTRL mask), so
writes that reach deep states are common, and otherwise as any 64-bit word.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...io import read_toml
from ...machine import Machine
from ...plugins import PluginManager, default_manager

# operation kinds: (kind, vcpu, a, b, c)
WRMSR, RDMSR, RDPMC, RETIRE, CPL, PCE, SCHED, MIGRATE, ADVANCE, SNAPSHOT, CPUID, FORK = range(12)
NAMES = (
    *("wrmsr", "rdmsr", "rdpmc", "retire", "cpl", "cr4_pce"),
    *("sched", "migrate", "advance", "snapshot", "cpuid", "fork"),
)
Op = tuple[int, int, int, int, int]
MASK64 = (1 << 64) - 1

# relative weights of the kinds (a PMU's MSRs dominate: they are what can go wrong)
WEIGHTS = {
    WRMSR: 34,
    RDMSR: 14,
    RDPMC: 12,
    RETIRE: 24,
    CPL: 3,
    PCE: 2,
    SCHED: 2,
    MIGRATE: 1,
    ADVANCE: 4,
    SNAPSHOT: 0.2,
    CPUID: 1,
    FORK: 0.08,
}
# control-register-shaped values: event selects with the usual flag combinations
EVENTSEL_FLAGS = (0x430000, 0x530000, 0x410000, 0x420000, 0x130000, 0x470000, 0x4B0000, 0x400000)
GLOBAL_MASKS = (0x7_0000_00FF, 0xF_0000_00FF, 0x1_0007_0000_00FF, 0x3F, 0x7_0000_0000, 0xFF)
MASKS = (0xF, 0xFF, 0xFFFF, 0xFFFF_FFFF, (1 << 48) - 1, 0xF_0000_00FF, 0x7_0000_00FF, 0xB0B)
CPUID_LEAVES = (0, 1, 0xA, 0x23, 0x80000000, 0x80000001, 0x80000022)


@dataclass
class Target:
    """One config to fuzz: its validated model and what the generator draws from."""

    name: str
    config: Any
    plugins: PluginManager
    msrs: list[int] = field(default_factory=list)
    klass: dict[int, str] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    vcpus: int = 1
    pcpus: int = 1
    has_host_events: bool = False

    def machine(self) -> Machine:
        return Machine(self.config, self.plugins)


def targets(
    paths: Sequence[str | Path], variants: bool = True, plugins: PluginManager | None = None
) -> list[Target]:
    """Every config in ``paths``, plus (``variants``) the Intel and AMD ones again with
    the host NMI watchdog and a host-wide ``perf record`` competing for counters."""
    from ...config import load_dict

    pm = plugins or default_manager()
    found: list[Target] = []
    for p in paths:
        data = read_toml(p)
        found.append(_target(str(p), load_dict(data, pm, source=str(p)), pm))
        strategy = data.get("strategy", {}).get("name", "emulated")
        host = data.get("host", {})
        if variants and strategy != "mediated" and not host.get("perf_record"):
            busy = dict(data)
            busy["host"] = {**host, "nmi_watchdog": True, "perf_record": ["cycles", "instructions"]}
            name = f"{p}+watchdog+perf-record"
            found.append(_target(name, load_dict(busy, pm, source=name), pm))
    return found


def _target(name: str, config: Any, pm: PluginManager) -> Target:
    m = Machine(config, pm)
    v = m.vcpus[0]
    keys = sorted({k for ks in v.pmu.events.values() for k in ks})
    return Target(
        name=name,
        config=config,
        plugins=pm,
        msrs=sorted(v.msr_table),
        klass={msr: h.klass for msr, h in v.msr_table.items()},
        events=sorted(v.pmu.events) + keys,
        vcpus=len(m.vcpus),
        pcpus=len(m.host.pcpus),
        has_host_events=bool(config.host.nmi_watchdog or config.host.perf_record),
    )


# ---------------------------------------------------------------- generation
def _value(rng: random.Random, t: Target, msr: int) -> int:
    """A value for ``msr``: mostly shaped like what its register holds (so the writes
    that reach deep states are common), else any 64-bit word."""
    klass = t.klass.get(msr, "")
    shaped = rng.random() < 0.6
    if shaped and klass == "eventsel":
        code = rng.choice(t.events)
        sel, umask = code if isinstance(code, tuple) else (rng.getrandbits(8), 0)
        v: int = rng.choice(EVENTSEL_FLAGS) | (sel & 0xFF) | ((sel >> 8) << 32) | (umask << 8)
        return v | (rng.getrandbits(8) << 24 if rng.random() < 0.2 else 0)
    if shaped and klass in ("global_ctrl", "global_status_clr", "global_status_set"):
        mask: int = rng.choice(GLOBAL_MASKS)
        return mask if rng.random() < 0.5 else rng.getrandbits(64) & mask
    if shaped and klass == "fixed_ctrl":
        return rng.getrandbits(16) & rng.choice((0xBBB, 0xB0B0, 0xBBBB, 0x333, 0xB0, 0xFFFF))
    if shaped and klass == "lvtpc":
        return rng.choice((0x400, 0xFE, 0x2FE, 0x200)) | rng.getrandbits(1) << 16
    r = rng.random()
    if r < 0.4:
        return rng.getrandbits(64)
    if r < 0.6:
        return rng.getrandbits(64) & rng.choice(MASKS)
    if r < 0.85:
        width = rng.choice((31, 32, 40, 47, 48, 63, 64))
        return ((1 << width) - rng.randrange(1, 2000)) & MASK64
    return rng.choice((0, MASK64, 1, 0x7000000FF, 0xF_0000_0000, 1 << 63))


def _msr(rng: random.Random, msrs: list[int]) -> int:
    r = rng.random()
    if r < 0.8:
        return rng.choice(msrs)
    if r < 0.9:
        return (rng.choice(msrs) + rng.randrange(-8, 9)) & 0xFFFF_FFFF
    return rng.getrandbits(32)


def _ecx(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.7:
        return rng.randrange(0, 10) | (rng.getrandbits(3) << 29)
    if r < 0.9:
        return rng.randrange(0, 64) | (rng.getrandbits(3) << 29)
    return rng.getrandbits(32)


def _count(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.6:
        return rng.randrange(0, 100)
    if r < 0.9:
        return rng.randrange(0, 1_000_000)
    return rng.getrandbits(rng.randrange(20, 50))


def generate(rng: random.Random, t: Target, n: int) -> list[Op]:
    """``n`` random operations for ``t`` (a function of ``rng``'s state only)."""
    kinds = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=n)
    ops: list[Op] = []
    ne = len(t.events)
    for k in kinds:
        v = rng.randrange(t.vcpus) if t.vcpus > 1 else 0
        if k == WRMSR:
            msr = _msr(rng, t.msrs)
            ops.append((k, v, msr, _value(rng, t, msr), 0))
        elif k == RDMSR:
            ops.append((k, v, _msr(rng, t.msrs), 0, 0))
        elif k == RDPMC:
            ops.append((k, v, _ecx(rng), 0, 0))
        elif k == RETIRE:
            # most events retire in user mode; CPL 1 and 2 count as user too
            cpl = rng.choice((0, 0, 3, 3, 3, 1, 2))
            ops.append((k, v, rng.randrange(ne), _count(rng), cpl))
        elif k == CPL:
            ops.append((k, v, rng.choice((0, 0, 0, 0, 3, 1, 2)), 0, 0))
        elif k == PCE:
            ops.append((k, v, rng.getrandbits(1), 0, 0))
        elif k == MIGRATE:
            ops.append((k, v, rng.randrange(t.pcpus), 0, 0))
        elif k == ADVANCE:
            r = rng.random()
            top = 200_000 if r < 0.7 else 20_000_000 if r < 0.998 else 1_200_000_000
            ns = rng.randrange(0, top)
            ops.append((k, v, ns, 0, 0))
        elif k == CPUID:
            leaf = rng.choice(CPUID_LEAVES) if rng.random() < 0.8 else rng.getrandbits(32)
            ops.append((k, v, leaf, rng.randrange(3), 0))
        else:
            ops.append((k, v, 0, 0, 0))
    return ops
