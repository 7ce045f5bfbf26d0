"""Scripted guests for the seed figures: control-MSR toggles, sampling, polling reads.

Why scripted: each seed figure (costs.md §1, §2a, and the grouped-counter case)
is the cost of one guest behaviour, so each workload here does that one thing
through the backend's guest driver and prices exactly the phase that matters from
the ledger difference around it. Time advances in big steps (to the next overflow,
host boundary or poll), never cycle by cycle.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..costs import CostTable, price
from ..errors import ConfigError
from ..guest_perf.schedule import gp_indexes
from ..ledger import ledger_delta, with_transitions
from .base import CounterRow, Workload, WorkloadOutput

if TYPE_CHECKING:
    from ..machine import Machine


class Phase:
    """Prices what the machine did between ``start()`` and ``stop()``, summed over calls."""

    def __init__(self, machine: Machine, costs: CostTable) -> None:
        self.machine = machine
        self.costs = costs
        self.n = 0
        self.total: dict[str, dict[str, int]] = {}
        self._before: dict[str, dict[str, int]] = {}

    def start(self) -> None:
        self._before = self.machine.ledger.as_dict()

    def stop(self) -> dict[str, dict[str, int]]:
        d = ledger_delta(self.machine.ledger.as_dict(), self._before)
        self.n += 1
        for cat, items in d.items():
            tgt = self.total.setdefault(cat, {})
            for k, v in items.items():
                tgt[k] = tgt.get(k, 0) + v
        return d

    def ledger(self) -> dict[str, dict[str, int]]:
        per_exit = self.machine.strategy.transition_msrs_per_exit
        return with_transitions(self.total, per_exit)

    def avg_ns(self, only: tuple[str, ...] | None = None) -> float:
        led = self.ledger()
        if only is not None:
            led = {c: v for c, v in led.items() if c in only}
        return price(led, self.costs, 0).total_ns / self.n if self.n else 0.0

    def report(self) -> dict[str, Any]:
        led = self.ledger()
        p = price(led, self.costs, 0)
        return {
            "count": self.n,
            "avg_ns": p.total_ns / self.n if self.n else 0.0,
            "ledger": led,
            "by_mechanism_ns": p.by_mechanism,
        }


# ------------------------------------------------------------------- toggle
Mode = Literal["eventsel-write", "enable-bit", "global-enable", "event-change"]


def _default_modes() -> list[Mode]:
    return ["enable-bit"]


class ToggleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["toggle"]
    modes: list[Mode] = Field(
        default_factory=_default_modes,
        min_length=1,
        description="phases run in order, each priced on its own. eventsel-write: program "
        "the counter (first write on a fresh VM); enable-bit: toggle only its enable bit; "
        "global-enable: toggle GLOBAL_CTRL (perf_pmu_disable/enable); event-change: "
        "alternate between `events`",
    )
    writes: int = Field(100, ge=1, le=10_000_000, description="guest control writes per phase")
    counter: int = Field(0, ge=0, description="GP counter the writes target")
    events: list[str] = Field(default_factory=lambda: ["branches", "branch-misses"], min_length=1)
    gap_us: float = Field(10.0, gt=0, description="guest time between two writes")


class Toggle(Workload):
    """Guest control writes, phase by phase; the average cost of one write and perf creations."""

    name: ClassVar[str] = "toggle"
    Config: ClassVar[type[BaseModel]] = ToggleConfig
    config: ToggleConfig

    def run(self) -> WorkloadOutput:
        cfg = self.config
        m = self.machine
        vcpu = m.vcpus[0]
        drv = m.guest_driver(vcpu)
        keys = [drv.gp_key(e) for e in cfg.events]
        i = cfg.counter
        if i not in gp_indexes(vcpu):
            raise ConfigError(
                "workload.counter", i, f"no such GP counter; the vCPU has {gp_indexes(vcpu)}"
            )
        gap = cfg.gap_us * 1000
        t = 0.0
        extra: dict[str, Any] = {"writes": cfg.writes, "phases": {}}
        for mode in cfg.modes:
            phase = Phase(m, m.config.costs)
            if mode != "eventsel-write":
                drv.enable_all()
                drv.program_gp(i, keys[0], usr=True, os=True)  # setup, not priced
            for w in range(cfg.writes):
                t += gap
                m.host.advance(t)
                phase.start()
                if mode == "eventsel-write":
                    drv.program_gp(i, keys[w % len(keys)], usr=True, os=True)
                elif mode == "enable-bit":
                    if w % 2 == 0:
                        drv.stop_gp(i, keys[0], usr=True, os=True)
                    else:
                        drv.program_gp(i, keys[0], usr=True, os=True)
                elif mode == "global-enable":
                    if w % 2 == 0:
                        drv.disable_all()
                    else:
                        drv.enable_all()
                else:
                    drv.program_gp(i, keys[(w + 1) % len(keys)], usr=True, os=True)
                vcpu.sync()
                phase.stop()
            rep = phase.report()
            ops = rep["ledger"].get("perf_ops", {})
            # KVM's own handling (what the 2018 series timed): emulation + perf + HW
            # writes, without the exit round trip and the VMCS MSR switch.
            kvm = phase.avg_ns(("perf_ops", "events")) + m.config.costs.kvm_pmu_emulation
            extra[f"{mode}_ns_per_write"] = rep["avg_ns"]
            extra[f"{mode}_kvm_ns_per_write"] = kvm
            extra[f"{mode}_perf_creates"] = ops.get("create", 0)
            extra["phases"][mode] = rep
            drv.stop_gp(i, keys[0], usr=True, os=True)  # between phases, not priced
            vcpu.sync()
        return WorkloadOutput(guest_ns=t, extra=extra, operations=cfg.writes * len(cfg.modes))


# ----------------------------------------------------------------- sampling
class SamplingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["sampling"]
    event: str = Field("cycles", description="the sampled event, on the lowest GP counter")
    period: int = Field(2_500_000, ge=16, description="events between two samples")
    rate_per_ns: float = Field(2.5, gt=0, description="events the guest retires per ns")
    duration_ms: float = Field(100.0, gt=0, description="guest time sampled")


class Sampling(Workload):
    """One event armed at -period with PMI, a handler that re-arms it: `perf record -c`."""

    name: ClassVar[str] = "sampling"
    Config: ClassVar[type[BaseModel]] = SamplingConfig
    config: SamplingConfig

    def run(self) -> WorkloadOutput:
        cfg = self.config
        m = self.machine
        vcpu = m.vcpus[0]
        drv = m.guest_driver(vcpu)
        i = gp_indexes(vcpu)[0]  # the lowest GP index the vCPU has
        pmc = vcpu.counters[i]
        arm = (-cfg.period) & pmc.mask
        drv.disable_all()
        drv.write_counter(i, arm)
        drv.program_gp(i, drv.gp_key(cfg.event), usr=True, os=True, intr=True)
        drv.unmask_pmi()
        drv.enable_all()
        host = m.host
        handle = Phase(m, m.config.costs)
        guest_handler = Phase(m, m.config.costs)
        end = cfg.duration_ms * 1e6
        t = 0.0
        retired = counted = 0
        while t < end:
            nxt = min(host.next_boundary(), end)
            live = pmc in vcpu.counting(cfg.event)
            n = pmc.events_to_overflow() if live else 0
            dt = n / cfg.rate_per_ns
            if live and t + dt <= nxt:
                pmis = len(vcpu.pmis)
                handle.start()
                vcpu.retire(cfg.event, n)  # overflow: KVM_REQ_PMU, then the PMI
                handle.stop()
                retired += n
                counted += n
                t += dt
                if len(vcpu.pmis) > pmis:  # the handler runs before a host boundary at t
                    guest_handler.start()
                    drv.handle_pmi({i: arm})
                    guest_handler.stop()
                host.advance(t)
                continue
            k = int((nxt - t) * cfg.rate_per_ns)
            if k:
                vcpu.retire(cfg.event, k)
                retired += k
                counted += k if live else 0
            t = nxt
            host.advance(t)
        expected = retired // cfg.period
        out = WorkloadOutput(guest_ns=end)
        out.rows = [
            CounterRow(vcpu.index, pmc.name, f"{cfg.event} samples", len(vcpu.pmis), expected)
        ]
        costs = m.config.costs
        out.extra = {
            "samples": len(vcpu.pmis),
            "events_lost_to_host": retired - counted,
            "pmu_handle_event_avg_ns": handle.avg_ns(("perf_ops", "events")),
            "pmi_exit_to_injection_avg_ns": handle.avg_ns(),
            "guest_handler_avg_ns": guest_handler.avg_ns(),
            "handle_event_reprograms": handle.total.get("events", {}).get("pmi_reprogram", 0),
            "handle_event_skipped": handle.total.get("events", {}).get("pmi_reprogram_skipped", 0),
            "migrations": m.ledger.events.get("vcpu_migration", 0),
            "pmu_handle_event_base_ns": costs.pmu_handle_event,
        }
        return out


# ------------------------------------------------------------------ polling
Layout = Literal["separate", "all-in-one"]


def _default_layouts() -> list[Layout]:
    return ["separate", "all-in-one"]


class PollingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["polling"]
    events: list[str] = Field(
        default_factory=lambda: ["cycles", "branches", "branch-misses", "llc-misses"],
        min_length=1,
        description="events counted",
    )
    layouts: list[Layout] = Field(
        default_factory=_default_layouts,
        min_length=1,
        description="phases in order. separate: one GP counter per event, each read per "
        "poll; all-in-one: one counter read per poll (an extension's grouped counter "
        "when one is configured, else a single GP counter)",
    )
    interval_ms: float = Field(1.0, gt=0, description="read every this much guest time")
    duration_ms: float = Field(1000.0, gt=0, description="guest time per layout")
    rate_per_ns: float = Field(2.5, gt=0, description="events retired per ns, every event")


class Polling(Workload):
    """Counters read with RDPMC every interval, like a self-monitoring guest."""

    name: ClassVar[str] = "polling"
    Config: ClassVar[type[BaseModel]] = PollingConfig
    config: PollingConfig

    def run(self) -> WorkloadOutput:
        cfg = self.config
        m = self.machine
        vcpu = m.vcpus[0]
        drv = m.guest_driver(vcpu)
        grouped = [p for p in vcpu.counters.values() if p.kind not in ("gp", "fixed")]
        t = 0.0
        extra: dict[str, Any] = {"grouped_extension": bool(grouped), "phases": {}}
        rows: list[CounterRow] = []
        for layout in cfg.layouts:
            whole = Phase(m, m.config.costs)
            whole.start()
            drv.disable_all()
            idxs: list[int] = []
            placed: list[tuple[int, str]] = []  # (GP index, event) of the separate layout
            read_grouped: Any = None
            events = cfg.events if layout == "separate" or grouped else cfg.events[:1]
            if layout == "all-in-one" and grouped:
                # The extension's all-in-one counter: every event lands in its own
                # field; the guest enables it through its control MSR and reads the
                # spliced value with one RDPMC (or RDMSR when it has no RDPMC index).
                pmc = grouped[0]
                rows_of = [h for h in vcpu.msr_table.values() if h.counter == pmc.idx]
                ctrl = next(h.msr for h in rows_of if h.klass != "counter")
                data = next(h.msr for h in rows_of if h.klass == "counter")
                vcpu.wrmsr(ctrl, 0b11)  # OS + USR
                ecx = next((e for e, r in vcpu.rdpmc_readers().items() if r == pmc.read), None)
                if ecx is not None:
                    read_grouped = functools.partial(vcpu.rdpmc, ecx)
                else:
                    read_grouped = functools.partial(vcpu.rdmsr, data)
                idxs = [pmc.idx]
            else:
                gp = gp_indexes(vcpu)
                if len(events) > len(gp):
                    raise ConfigError(
                        "workload.events", events, f"{len(gp)} GP counters for {len(events)}"
                    )
                placed = list(zip(gp, events, strict=False))
                for i, e in placed:
                    drv.write_counter(i, 0)
                    drv.program_gp(i, drv.gp_key(e), usr=True, os=True)
                    idxs.append(i)
            drv.enable_all()
            reads = Phase(m, m.config.costs)
            step = cfg.interval_ms * 1e6
            end = t + cfg.duration_ms * 1e6
            polls = 0
            retired = dict.fromkeys(events, 0)
            while t < end - 1e-6:
                nxt = min(t + step, end)
                while m.host.next_boundary() <= nxt:
                    b = m.host.next_boundary()
                    for e in events:
                        n = int((b - t) * cfg.rate_per_ns)
                        vcpu.retire(e, n)
                        retired[e] += n
                    t = b
                    m.host.advance(t)
                for e in events:
                    n = int((nxt - t) * cfg.rate_per_ns)
                    vcpu.retire(e, n)
                    retired[e] += n
                t = nxt
                m.host.advance(t)
                reads.start()
                if read_grouped is not None:
                    read_grouped()
                else:
                    for idx in idxs:
                        drv.read_counter(idx)
                vcpu.sync()
                reads.stop()
                polls += 1
            drv.disable_all()
            if layout == "separate":
                for i, e in placed:  # what the guest read vs what it retired
                    value = drv.read_counter(i)
                    rows.append(CounterRow(vcpu.index, f"gp{i}", e, value, retired[e]))
            if read_grouped is None:
                for i, e in placed:
                    drv.stop_gp(i, drv.gp_key(e), usr=True, os=True)
            m.host.advance(t + 3 * m.host.slice_ns)  # idle slices: lazy release happens
            t += 3 * m.host.slice_ns
            vcpu.sync()
            whole.stop()
            rep = reads.report()
            ops = whole.ledger().get("perf_ops", {})
            extra[f"{layout}_counters_read_per_poll"] = len(idxs)
            extra[f"{layout}_exits_per_poll"] = sum(rep["ledger"].get("exits", {}).values()) / max(
                polls, 1
            )
            extra[f"{layout}_ns_per_poll"] = rep["avg_ns"]
            extra[f"{layout}_perf_creates"] = ops.get("create", 0)
            extra[f"{layout}_perf_ops_total"] = sum(
                v for k, v in ops.items() if k != "create_sched_rcu"
            )
            extra["phases"][layout] = {"polls": polls, "reads": rep, "perf_ops": ops}
        return WorkloadOutput(rows=rows, guest_ns=t, extra=extra)
