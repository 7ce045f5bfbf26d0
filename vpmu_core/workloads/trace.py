"""``trace``: replay a file of guest operations.

Why: a trace is how a bug report, a captured guest (``perf trace -e msr:*``) or a
hand-written corner case becomes a run the model can price and check. The format
is line based (docs/trace-format.md); the whole file is parsed before anything
runs, so a malformed line is reported with its number and no operation is issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError, GuestFault
from ..events import Catalog, UnknownEvent, catalog_of
from ..io import read_text
from ..units import event
from .base import CounterRow, Workload, WorkloadOutput
from .profiles import Profile, Truth, resolve

VERBS = ("vcpu", "wrmsr", "rdmsr", "rdpmc", "cpuid", "run", "sched", "migrate", "cpl", "expect")


class TraceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["trace"]
    path: str | None = Field(None, description="the trace file (relative to the working dir)")
    text: str | None = Field(None, description="the trace itself, inline")
    profile: str | Profile = Field(
        "specint", description="rates `run N cycles` retires (see docs/workloads.md)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> TraceConfig:
        if (self.path is None) == (self.text is None):
            raise ConfigError("workload.path", self.path, "give exactly one of path and text")
        resolve(self.profile)
        return self


@dataclass(frozen=True, slots=True)
class Op:
    line: int
    verb: str
    args: tuple[Any, ...]


class TraceError(ConfigError):
    """A malformed trace line: names the line, what was found, and what is allowed."""


# Operations taking one integer below a bound (the machine's pCPUs or vCPUs, or 4
# privilege levels): verb -> (what it names, usage).
_ONE_INDEX: dict[str, tuple[str, str]] = {
    "migrate": ("pCPU", "migrate PCPU"),
    "vcpu": ("vCPU", "vcpu N"),
    "cpl": ("cpl", "cpl N"),
}


def _int(text: str, line: int, what: str) -> int:
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise TraceError(f"trace line {line}", text, f"{what} must be an integer") from None
    if value < 0:
        raise TraceError(f"trace line {line}", text, f"{what} must be >= 0")
    return value


def _cpl(opts: list[str], line: int) -> int:
    cpl = 0
    for opt in opts:
        key, eq, val = opt.partition("=")
        if key != "cpl" or not eq:
            raise TraceError(f"trace line {line}", opt, "the only option is cpl=0..3")
        cpl = _int(val, line, "cpl")
        if cpl > 3:
            raise TraceError(f"trace line {line}", val, "cpl must be 0-3")
    return cpl


EXPECT_USAGE = "usage: expect rdmsr|rdpmc INDEX VALUE|gp, or expect wrmsr MSR ok|gp"


def _expect(rest: list[str], line: int, raw: str) -> tuple[str, int, int | str]:
    """``expect``: what the last access of that kind and index answered.

    A read answers its value, or ``gp`` when it faulted; a write answers ``ok`` or
    ``gp``. So a #GP the trace expects (a reserved bit, a counter that does not
    exist) is stated as such and is no failure.
    """
    if len(rest) != 3 or rest[0] not in ("rdmsr", "rdpmc", "wrmsr"):
        raise TraceError(f"trace line {line}", raw.strip(), EXPECT_USAGE)
    kind, index, want = rest[0], _int(rest[1], line, "index"), rest[2].lower()
    if want == "gp" or (kind == "wrmsr" and want == "ok"):
        return kind, index, want
    if kind == "wrmsr":
        raise TraceError(f"trace line {line}", rest[2], "a write answers ok or gp")
    return kind, index, _int(rest[2], line, "value")


def _shown(answer: int | str | None) -> str:
    if answer is None:
        return "nothing (no such access before this line)"
    return answer if isinstance(answer, str) else f"{answer:#x}"


def parse(text: str, events: Catalog, vcpus: int, pcpus: int) -> list[Op]:
    """Every line checked before anything runs; the first bad one raises TraceError.

    ``run N EVENT`` takes any of perf's spellings (vpmu_core.events) and stores the
    event it retires: a raw spelling with qualifier bits (cmask, inv, edge) names
    how a counter counts, not an event, and is refused.
    """
    ops: list[Op] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        verb, rest = words[0].lower(), words[1:]
        where = f"trace line {n}"
        if verb not in VERBS:
            raise TraceError(where, verb, f"unknown operation; allowed: {', '.join(VERBS)}")
        if verb == "wrmsr":
            if len(rest) != 2:
                raise TraceError(where, raw.strip(), "usage: wrmsr MSR VALUE")
            msr, value = _int(rest[0], n, "MSR"), _int(rest[1], n, "value")
            if value >= 1 << 64 or msr >= 1 << 32:
                raise TraceError(where, raw.strip(), "MSR is 32 bits, value 64 bits")
            ops.append(Op(n, verb, (msr, value)))
        elif verb in ("rdmsr", "rdpmc"):
            if len(rest) != 1:
                raise TraceError(
                    where, raw.strip(), f"usage: {verb} {'MSR' if verb == 'rdmsr' else 'ECX'}"
                )
            ops.append(Op(n, verb, (_int(rest[0], n, "index"),)))
        elif verb == "cpuid":
            if len(rest) not in (1, 2):
                raise TraceError(where, raw.strip(), "usage: cpuid LEAF [SUBLEAF]")
            leaf, sub = (_int(r, n, "leaf") for r in (*rest, "0")[:2])
            if leaf >= 1 << 32 or sub >= 1 << 32:
                raise TraceError(where, raw.strip(), "LEAF and SUBLEAF are 32 bits")
            ops.append(Op(n, verb, (leaf, sub)))
        elif verb == "expect":
            ops.append(Op(n, verb, _expect(rest, n, raw)))
        elif verb == "run":
            if len(rest) < 2:
                raise TraceError(where, raw.strip(), "usage: run N cycles|EVENT [cpl=N]")
            count = _int(rest[0], n, "N")
            what = rest[1]
            if what != "cycles":
                try:
                    spec = events.parse(what)
                except UnknownEvent as exc:
                    raise TraceError(where, what, str(exc)) from None
                if spec.qual:
                    raise TraceError(
                        where, what, "has qualifier bits: they program a counter; run the event"
                    )
                what = spec.base
            ops.append(Op(n, verb, (count, what, _cpl(rest[2:], n))))
        elif verb == "sched":
            if rest not in (["out"], ["in"]):
                raise TraceError(where, raw.strip(), "usage: sched out | sched in")
            ops.append(Op(n, verb, (rest[0],)))
        elif verb in _ONE_INDEX:
            what, usage = _ONE_INDEX[verb]
            if len(rest) != 1:
                raise TraceError(where, raw.strip(), f"usage: {usage}")
            value = _int(rest[0], n, what)
            top = {"migrate": pcpus, "vcpu": vcpus, "cpl": 4}[verb]
            if value >= top:
                raise TraceError(where, value, f"{what} must be 0-{top - 1}")
            ops.append(Op(n, verb, (value,)))
    return ops


class Trace(Workload):
    """Replays a trace on the machine's vCPUs; reads, faults and mismatches are reported."""

    name: ClassVar[str] = "trace"
    Config: ClassVar[type[BaseModel]] = TraceConfig
    config: TraceConfig

    def _text(self) -> str:
        cfg = self.config
        if cfg.text is not None:
            return cfg.text
        assert cfg.path is not None
        return read_text(cfg.path, "workload.path")

    def run(self) -> WorkloadOutput:
        m = self.machine
        pmu = m.vcpus[0].pmu
        events = set(pmu.events)
        catalog = catalog_of(pmu.events, pmu.caps)
        ops = parse(self._text(), catalog, len(m.vcpus), len(m.host.pcpus))
        profile = resolve(self.config.profile)
        truth = Truth(profile, catalog.base_of)
        names = [n for n in truth.events() if n in events]
        cycles = [0] * len(m.vcpus)
        vcpu = m.vcpus[0]
        reads: list[dict[str, Any]] = []
        faults: list[dict[str, Any]] = []
        mismatches: list[dict[str, Any]] = []
        last: dict[tuple[str, int], int | str] = {}
        fault_of: dict[tuple[str, int], dict[str, Any]] = {}
        for op in ops:
            if op.verb in ("wrmsr", "rdmsr", "rdpmc"):
                last[(op.verb, op.args[0])] = "gp"  # until it completes
            try:
                if op.verb == "vcpu":
                    vcpu = m.vcpus[op.args[0]]
                elif op.verb == "cpl":
                    vcpu.cpl = op.args[0]
                elif op.verb == "wrmsr":
                    vcpu.wrmsr(*op.args)
                    last[("wrmsr", op.args[0])] = "ok"
                elif op.verb == "rdmsr":
                    v = vcpu.rdmsr(op.args[0])
                    last[("rdmsr", op.args[0])] = v
                    reads.append(
                        {"line": op.line, "vcpu": vcpu.index, "rdmsr": op.args[0], "value": v}
                    )
                elif op.verb == "rdpmc":
                    v = vcpu.rdpmc(op.args[0])
                    last[("rdpmc", op.args[0])] = v
                    reads.append(
                        {"line": op.line, "vcpu": vcpu.index, "rdpmc": op.args[0], "value": v}
                    )
                elif op.verb == "cpuid":
                    regs = list(vcpu.cpuid(*op.args))
                    reads.append(
                        {"line": op.line, "vcpu": vcpu.index, "cpuid": [*op.args], "value": regs}
                    )
                elif op.verb == "expect":
                    kind, idx, want = op.args
                    got = last.get((kind, idx))
                    if got != want:
                        what = f"{kind} {idx:#x} answered {_shown(got)}, expected {_shown(want)}"
                        mismatches.append(
                            {"line": op.line, "expected": want, "read": got, "what": what}
                        )
                    elif want == "gp":
                        fault_of[(kind, idx)]["expected"] = True
                elif op.verb == "run":
                    n, what, cpl = op.args
                    if what == "cycles":
                        c0 = cycles[vcpu.index]
                        c1 = c0 + n
                        u0, k0 = truth.split(c0)
                        u1, k1 = truth.split(c1)
                        for name in names:
                            ru, rk = truth.rates(name)
                            vcpu.retire(name, int(u1 * ru) - int(u0 * ru), 3, u1 - u0)
                            vcpu.retire(name, int(k1 * rk) - int(k0 * rk), 0, k1 - k0)
                        cycles[vcpu.index] = c1
                        vcpu.clock = c1
                        m.host.advance(max(cycles) / profile.ghz)
                    else:
                        vcpu.retire(what, n, cpl)
                elif op.verb == "sched":
                    if op.args[0] == "out":
                        m.host.sched_out(vcpu)
                    else:
                        m.host.sched_in(vcpu)
                elif op.verb == "migrate":
                    m.host.migrate(vcpu, op.args[0])
            except GuestFault as exc:
                fault = {"line": op.line, "vector": exc.vector, "what": str(exc), "expected": False}
                faults.append(fault)
                fault_of[(op.verb, op.args[0])] = fault
        for each in m.vcpus:
            each.sync()
        rows = [
            CounterRow(cpu.index, pmc.name, event(pmc.key, cpu.pmu.events), pmc.value)
            for cpu in m.vcpus
            for pmc in cpu.counters.values()
            if pmc.value
        ]
        return WorkloadOutput(
            rows=rows,
            guest_ns=max(cycles) / profile.ghz,
            extra={
                "operations": len(ops),
                "reads": reads[:1000],
                "faults": faults,
                "mismatches": mismatches,
                "pmis": sum(len(v.pmis) for v in m.vcpus),
            },
        )
