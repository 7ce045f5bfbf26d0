"""A campaign: episodes of random operations per config, failures shrunk and reproduced."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..shrink import ddmin
from .execute import Failure, Run, run_ops
from .ops import FORK, NAMES, RETIRE, Op, Target, generate


# ------------------------------------------------------------------- campaign
@dataclass
class Found:
    """One failure class of a campaign: its first instance, shrunk, and how often it hit."""

    failure: Failure
    ops: list[Op]
    hits: int = 1


@dataclass
class Report:
    target: str
    ops: int = 0
    faults: int = 0  # GuestFaults: architectural answers, not failures
    exceptions: int = 0
    violations: int = 0  # invariants, restore changes, divergences
    contention: int = 0  # divergences under host contention (not violations)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    found: dict[str, Found] = field(default_factory=dict)


def campaign(
    t: Target,
    ops: int,
    seed: int = 0,
    *,
    episode: int = 4000,
    shrink_seconds: float = 60.0,
) -> Report:
    """``ops`` operations on ``t`` in episodes of fresh machines; failures shrunk once per
    class. Deterministic in ``seed`` (each episode's generator is seeded by seed, config
    and episode number, so an episode's operations do not depend on earlier failures)."""
    report = Report(t.name)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    e = 0
    while report.ops < ops:
        rng = random.Random(f"{seed}:{t.name}:{e}")
        e += 1
        batch = generate(rng, t, min(episode, ops - report.ops))
        out = Run(t).execute(batch)
        report.ops += out.ops
        report.faults += out.faults
        f = out.failure
        if f is None:
            continue
        if f.kind == "exception":
            report.exceptions += 1
        elif f.violation:
            report.violations += 1
        else:
            report.contention += 1
        known = report.found.get(f.signature)
        if known is not None:
            known.hits += 1
            continue
        prefix = batch[: f.op_index + 1]
        sig = f.signature

        def fails(sub: list[Op], sig: str = sig) -> bool:
            got = run_ops(t, sub).failure
            return got is not None and got.signature == sig

        small = ddmin(prefix, fails, shrink_seconds) if shrink_seconds > 0 else prefix
        final = run_ops(t, small).failure
        report.found[sig] = Found(final if final is not None else f, small)
    report.cpu_s = time.process_time() - cpu0
    report.wall_s = time.perf_counter() - wall0
    return report


def reproducer(t: Target, ops: Sequence[Op]) -> str:
    """A Python script against the public API that replays ``ops`` (and its forks) on ``t``
    and prints each answer, the restored copy's beside the original's after a fork."""
    src = t.name.split("+", 1)
    if len(src) == 1:
        build = [f"    return vpmu.Machine.from_toml({src[0]!r})"]
    else:
        build = [
            f"    cfg = tomllib.loads(open({src[0]!r}).read())",
            "    host = cfg.setdefault('host', {})",
            "    host.update(nmi_watchdog=True, perf_record=['cycles', 'instructions'])",
            "    return vpmu.Machine.from_dict(cfg)",
        ]
    lines = [
        "import tomllib",
        "",
        "import vpmu_core as vpmu",
        "from vpmu_core.testing.fuzz import fork_of",
        "",
        "",
        "def build():",
        *build,
        "",
        "",
        "machines = [build()]",
        "",
        "",
        "def each(op):",
        "    answers = []",
        "    for m in machines:",
        "        try:",
        "            answers.append(op(m, m.vcpus))",
        "        except vpmu.GuestFault:",
        "            answers.append('#GP')",
        "    print(*answers, sep='  |  ')",
        "",
        "",
        "def fork():",
        "    machines[1:] = [fork_of(machines[0], build())]",
        "",
        "",
    ]
    lines += [_statement(t, op) for op in ops]
    lines += [
        "for vcpus in zip(*(m.vcpus for m in machines)):",
        "    print(*(v.snapshot().counters for v in vcpus), sep='\\n')",
    ]
    return "\n".join(lines)


#: each kind as a statement of the replay script (``m``: a machine, ``v``: its vCPUs)
STATEMENTS = {
    "wrmsr": "{v}.wrmsr({a:#x}, {b:#x})",
    "rdmsr": "hex({v}.rdmsr({a:#x}))",
    "rdpmc": "hex({v}.rdpmc({a:#x}))",
    "retire": "{v}.retire({event!r}, {b}, cpl={c})",
    "cpl": "setattr({v}, 'cpl', {a})",
    "cr4_pce": "setattr({v}, 'cr4_pce', {a_bool})",
    "sched": "(m.host.sched_out({v}), m.host.sched_in({v}))",
    "migrate": "m.host.migrate({v}, {a})",
    "advance": "m.host.advance(m.host.now_ns + {a})",
    "cpuid": "{v}.cpuid({a:#x}, {b})",
    "snapshot": "{v}.restore({v}.snapshot().model_dump_json())",
}


def _statement(t: Target, op: Op) -> str:
    k, vi, a, b, c = op
    if k == FORK:
        return "fork()"
    event = t.events[a] if k == RETIRE else None
    body = STATEMENTS[NAMES[k]].format(v=f"v[{vi}]", a=a, b=b, c=c, event=event, a_bool=bool(a))
    return f"each(lambda m, v: {body})"
