"""``perf-stat`` and ``perf-record``: Linux perf inside the guest, as workloads.

The workloads say what perf was asked to do (events, scope, privilege filter,
``-F``/``-c``, the sysctls) and report what it saw; the decisions perf makes at
run time -- scheduling, rotation, frequency mode, throttling, auto-lowering --
are the guest perf engine's (:mod:`vpmu_core.guest_perf`). vCPUs that cannot
interact are simulated in separate processes (``workers``, :mod:`.parallel`), and
vCPUs proven identical are simulated once for their whole class (``symmetry``,
:mod:`.symmetry`); ledger deltas are integers summed per key, so the result is
the same with any number of workers and with or without the shortcut.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import guest_perf
from ..errors import ConfigError
from ..events import catalog_of
from ..guest_perf import ProgressFn, Session, VcpuResult
from .base import CounterRow, Workload, WorkloadOutput
from .profiles import Profile, Truth, resolve

if TYPE_CHECKING:
    from ..machine import Machine


class PerfConfigBase(BaseModel):
    """What ``perf stat`` and ``perf record`` share: events, profile, scope, duration."""

    model_config = ConfigDict(extra="forbid")
    events: list[str] = Field(
        default_factory=lambda: ["instructions"],
        min_length=1,
        description="one perf event per entry, each its own group (repeat a name for N "
        "instances, as `-e instructions,instructions,...`)",
    )
    profile: str | Profile = Field(
        "specint", description="event rates: 'specint', 'idle', or a table of rates by CPL"
    )
    duration_ms: float = Field(100.0, gt=0, description="guest time perf runs for")
    system_wide: bool = Field(True, description="-a: every vCPU (else vCPU 0 only)")
    count: Literal["all", "user", "kernel"] = Field(
        "all", description="privilege filter (`--all-user` = user, `--all-kernel` = kernel)"
    )
    mux_interval_ms: float | None = Field(
        None, gt=0, description="perf_event_mux_interval_ms of the guest (default 1000/HZ)"
    )
    workers: int = Field(
        1, ge=1, le=64, description="processes vCPUs are simulated in when they cannot interact"
    )
    symmetry: bool = Field(
        True,
        description="simulate vCPUs proven identical (same state, nothing coupling them) once "
        "and count the result for each; exact (false: simulate every vCPU)",
    )

    @model_validator(mode="after")
    def _check_profile(self) -> PerfConfigBase:
        resolve(self.profile)
        return self


class PerfStatConfig(PerfConfigBase):
    kind: Literal["perf-stat"]


class PerfRecordConfig(PerfConfigBase):
    kind: Literal["perf-record"]
    freq: int | None = Field(
        4000,
        ge=1,
        description="-F: samples per second per event (perf record's default 4000, costs.md §5)",
    )
    period: int | None = Field(
        None, ge=2, description="-c: fixed sample period (set freq to null to use it)"
    )
    max_sample_rate: int = Field(
        100_000, ge=1, description="kernel.perf_event_max_sample_rate (default 100000)"
    )
    cpu_time_max_percent: int = Field(
        25,
        ge=0,
        le=100,
        description="kernel.perf_cpu_time_max_percent: 0 disables the auto-lowering",
    )

    @model_validator(mode="after")
    def _check_mode(self) -> PerfRecordConfig:
        if (self.freq is None) == (self.period is None):
            raise ConfigError(
                "workload.freq", self.freq, "give exactly one of freq (-F) and period (-c)"
            )
        return self


def session_of(cfg: PerfConfigBase, machine: Machine) -> Session:
    """The engine's view of a perf workload's ``[workload]`` table on ``machine``: the
    profile's events named by the catalog the guest driver names perf's events by."""
    profile = resolve(cfg.profile)
    pmu = machine.vcpus[0].pmu
    catalog = catalog_of(pmu.events, pmu.caps)
    record = isinstance(cfg, PerfRecordConfig)
    return Session(
        events=tuple(cfg.events),
        truth=Truth(profile, catalog.base_of),
        ghz=profile.ghz,
        duration_ms=cfg.duration_ms,
        usr=cfg.count in ("all", "user"),
        os=cfg.count in ("all", "kernel"),
        sampling=record,
        freq=cfg.freq if isinstance(cfg, PerfRecordConfig) else None,
        period=cfg.period if isinstance(cfg, PerfRecordConfig) else None,
        max_sample_rate=cfg.max_sample_rate if isinstance(cfg, PerfRecordConfig) else 100_000,
        cpu_time_max_percent=(
            cfg.cpu_time_max_percent if isinstance(cfg, PerfRecordConfig) else 25
        ),
        mux_interval_ms=cfg.mux_interval_ms,
        staggered=record and cfg.system_wide,
    )


def simulate(
    machine: Machine, vcpus: list[int], progress: ProgressFn | None = None
) -> list[VcpuResult]:
    """Run the machine's perf workload on ``vcpus`` in lockstep with the host."""
    return guest_perf.simulate(
        machine, vcpus, session_of(machine.config.workload, machine), progress
    )


class PerfWorkload(Workload):
    """Shared engine of perf-stat and perf-record."""

    config: PerfConfigBase
    progress: ProgressFn | None = None

    def targets(self) -> list[int]:
        n = len(self.machine.vcpus)
        return list(range(n)) if self.config.system_wide else [0]

    def run(self) -> WorkloadOutput:
        from .parallel import KeyDropped, can_shard, run_units
        from .symmetry import symmetric_classes

        cfg = self.config
        m = self.machine
        vcpus = self.targets()
        session = session_of(cfg, m)
        classes = symmetric_classes(m, vcpus, session.per_vcpu_variation) if cfg.symmetry else None
        if classes is not None and len(classes) == len(vcpus):
            classes = None  # nothing to fold: shard or run serially as without it
        if classes is None and cfg.workers > 1 and len(vcpus) > 1 and can_shard(m, vcpus):
            classes = [[i] for i in vcpus]
        results: list[VcpuResult] | None = None
        if classes is not None:
            end_ns = session.duration_ms * 1e6
            try:
                results = run_units(m, classes, cfg.workers, self.progress, simulate, end_ns)
            except KeyDropped:
                results = None  # the automatic fallback: every vCPU, in full
        if results is None:
            results = simulate(m, vcpus, self.progress)
        return self._output(results)

    def _output(self, results: list[VcpuResult]) -> WorkloadOutput:
        cfg = self.config
        # the guest's time is the run's less what its clock spent in priced mechanisms
        # ([guest] clock = "wall"; nothing under "work", which puts them on top)
        lost = math.fsum(r.lost_ns for r in results)
        out = WorkloadOutput(guest_ns=cfg.duration_ms * 1e6 * len(self.machine.vcpus) - lost)
        taken = expected = lost_thr = lost_host = 0
        dropped = sum(r.pmis_dropped for r in results)
        for r in results:
            for row in r.rows:
                out.rows.append(
                    CounterRow(r.vcpu, row["counter"], row["event"], row["value"], row["truth"])
                )
                taken += row["samples"]
                expected += row["expected_samples"]
                lost_thr += row["lost_throttle"]
                lost_host += row["lost_host"]
        record = isinstance(cfg, PerfRecordConfig)
        scaled_err = [
            abs(row["scaled"] - row["truth"]) / row["truth"]
            for r in results
            for row in r.rows
            if row["truth"]
        ]
        out.extra = {
            "perf": [r.model_dump() for r in results],
            "vcpus_profiled": len(results),
            "scaled_error_max_pct": 100 * max(scaled_err) if scaled_err else 0.0,
            "rotations": sum(r.rotations for r in results),
            "pmis_handled": sum(r.pmis for r in results),
        }
        if record:
            out.extra |= {
                "samples_taken": taken,
                "samples_expected": expected,
                "samples_lost_throttling": lost_thr,
                "samples_lost_host_contention": lost_host,
                "pmis_dropped_lvtpc_masked": dropped,
                "throttles": sum(r.throttles for r in results),
                "max_sample_rate_final": min((r.lowered_to for r in results), default=0),
                "guest_handler_avg_ns": (
                    sum(r.handler_avg_ns for r in results) / len(results) if results else 0.0
                ),
            }
        return out


class PerfStat(PerfWorkload):
    """``perf stat -a -e ...``: counting, multiplexed when the events do not fit."""

    name: ClassVar[str] = "perf-stat"
    Config: ClassVar[type[BaseModel]] = PerfStatConfig


class PerfRecord(PerfWorkload):
    """``perf record -a -F/-c -e ...``: sampling with the vendor PMI handler."""

    name: ClassVar[str] = "perf-record"
    Config: ClassVar[type[BaseModel]] = PerfRecordConfig
