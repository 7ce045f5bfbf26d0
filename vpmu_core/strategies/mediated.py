"""``mediated``: the KVM mediated PMU, as merged for 6.20 and as the 2024 RFC posted it
(spec/intel.md §10, costs.md §3, §3e).

Why it is cheap on PMU accesses and dear on transitions: the guest owns the
hardware PMU while its context is loaded. Counter MSRs pass through; event selects
and FIXED_CTR_CTRL are intercepted so the event filter can be enforced by masking
hardware enable bits (no perf event is ever created). ``mode = "6.20"`` passes the
GLOBAL_* registers and RDPMC through only when the guest's counter counts (and
widths) match the host's, shows the guest version 2 at most, elides counter
writes already in hardware (b0b6a8d3be16) and leaves the fastpath while a PMC
counts instructions or branches; ``mode = "rfc"`` passes them through, shows up
to min(host, 5) and saves and restores everything. Both put and load the context
around the inner run loop; ``switch = "every-exit"`` is a what-if. GLOBAL_CTRL
rides the VMCS. While loaded, host perf is blind.

The put+load itself, per vCPU, is :mod:`.mediated_switch` (compiled with the
engine); this module is the strategy's config and its MSR interception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..hookspecs import hookimpl
from ..host_pmu import INTEL
from ..host_pmu import resolve as resolve_host_pmu
from ..msr import (
    COUNTER,
    EVENTSEL,
    FIXED_CTRL,
    GLOBAL_CTRL,
    GLOBAL_STATUS,
    GLOBAL_STATUS_CLR,
    GLOBAL_STATUS_SET,
    MsrHandler,
)
from ..strategy import Strategy
from .common import InjectedPmiPath
from .mediated_switch import MediatedAllocator

if TYPE_CHECKING:
    from ..port import VcpuPort

GLOBALS = (GLOBAL_CTRL, GLOBAL_STATUS, GLOBAL_STATUS_CLR, GLOBAL_STATUS_SET)


Mode = Literal["rfc", "6.20"]


class MediatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["mediated"]
    mode: Mode = Field(
        "6.20",
        description="'6.20': the merged design (guest PMU version <= 2 and <= 3 fixed "
        "counters, elided put+load, fastpath bail-out while a PMC counts instructions or "
        "branches); 'rfc': the 2024 RFC v1 the overhead table measured (guest version up to "
        "min(host, 5), put+load without elision, no bail-out) (costs.md §3e)",
    )
    switch: Literal["run-loop", "every-exit"] = Field(
        "run-loop",
        description="where the guest PMU context is put and loaded: 'run-loop', around "
        "the inner run loop (the RFC and 6.20 alike, costs.md §3e); 'every-exit' is a "
        "what-if no published design made: a switch at every VM exit, fastpath ones too",
    )
    passthrough_controls: bool = Field(
        False,
        description="also pass event selects and FIXED_CTR_CTRL through (the 'all "
        "passthrough' column of costs.md §3b); the event filter then cannot be enforced",
    )


class Mediated(Strategy):
    """The guest owns the PMU while loaded; only controls (and mismatches) exit."""

    name: ClassVar[str] = "mediated"
    Config: ClassVar[type[BaseModel]] = MediatedConfig
    transition_msrs_per_exit: ClassVar[int] = 3  # GLOBAL_CTRL: load guest, save guest, host 0
    shardable: ClassVar[bool] = True

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """The host must carry the mediated PMU; the guest's view must be one KVM builds.

        Host (spec/intel.md §10): Intel v4+ with full-width writes (GLOBAL_STATUS_SET
        restores the guest's overflow bits), or AMD PerfMonV2; no system-wide host
        events. Guest: 6.20 shows version <= 2 and <= 3 fixed counters; the RFC up to
        min(host, 5); the guest's counters must exist in the host's hardware.
        """
        guest = plugins.registry["backends"][config.pmu.backend](config.pmu, None).caps()
        host = resolve_host_pmu(config.host, guest)
        intel = host.vendor == INTEL
        needs = (
            "an Intel host PMU of version 4+ with full-width writes and GLOBAL_STATUS_SET"
            if intel
            else "an AMD host PMU with PerfMonV2 (GLOBAL_STATUS_SET)"
        )
        if intel and host.version < 4:
            raise ConfigError("host.version", host.version, f"the mediated PMU needs {needs}")
        if not host.full_width_writes:
            raise ConfigError("host.full_width_writes", False, f"the mediated PMU needs {needs}")
        if not host.global_status_set:
            raise ConfigError("host.global_status_set", False, f"the mediated PMU needs {needs}")
        mode = config.strategy.mode
        if intel and mode == "6.20":
            if guest.version > 2:
                raise ConfigError(
                    "pmu.version",
                    guest.version,
                    "a 6.20 mediated guest sees PMU version 2 at most (kvm_init_pmu_capability "
                    'clamps it); mode = "rfc" allowed min(host, 5)',
                )
            if guest.fixed_counters > 3:
                raise ConfigError(
                    "pmu.fixed_counters",
                    guest.fixed_counters,
                    "a 6.20 mediated guest has 3 fixed counters at most "
                    "(KVM_MAX_NR_INTEL_FIXED_COUNTERS)",
                )
        if intel and mode == "rfc" and guest.version > min(host.version, 5):
            raise ConfigError(
                "pmu.version",
                guest.version,
                f"the RFC's mediated guest sees min(host, 5) = {min(host.version, 5)} at most",
            )
        if guest.gp_counters > host.gp or guest.fixed_counters > host.fixed:
            raise ConfigError(
                "host.gp_counters" if guest.gp_counters > host.gp else "host.fixed_counters",
                host.gp if guest.gp_counters > host.gp else host.fixed,
                "a mediated guest's counters are the host's own: the host needs at least "
                f"the guest's {guest.gp_counters} GP and {guest.fixed_counters} fixed",
            )
        cfg_host = config.host
        if cfg_host.nmi_watchdog or cfg_host.perf_record:
            raise ConfigError(
                "host",
                "nmi_watchdog" if cfg_host.nmi_watchdog else "perf_record",
                "the mediated PMU cannot be created while the host has system-wide perf "
                "events (perf_create_mediated_pmu fails, spec/intel.md §10)",
            )

    def _counts_match(self, vcpu: VcpuPort) -> bool:
        """GLOBAL_* pass through only if the guest has the host's counters (§10): on an
        SPR host (4 fixed) a 6.20 guest (3 at most) has them intercepted."""
        host = vcpu.machine.host.pmu
        caps = vcpu.pmu.caps
        return (
            caps.gp_counters == host.gp and caps.fixed_counters == host.fixed and caps.version > 1
        )

    def intercept(self, vcpu: VcpuPort, handler: MsrHandler, write: bool) -> str | None:
        k = handler.klass
        reason = f"{'wrmsr' if write else 'rdmsr'}:{k}"
        if k == COUNTER:
            # Rows exist only for the guest's own counters (and the full-width
            # aliases only with FW writes), which is exactly what passes through.
            return None
        if k in GLOBALS:
            # the RFC passed them through; 6.20 only when the counts match
            rfc = self.config.mode == "rfc"
            return None if rfc or self._counts_match(vcpu) else reason
        if k in (EVENTSEL, FIXED_CTRL):
            return None if self.config.passthrough_controls else reason
        return reason

    def rdpmc_exits(self, vcpu: VcpuPort) -> bool:
        """RDPMC runs natively only if counts *and* widths equal the host's (spec §7);
        the RFC v1 never intercepted it (v2 added the rule, costs.md §3a)."""
        if self.config.mode == "rfc":
            return False
        host = vcpu.machine.host.pmu
        caps = vcpu.pmu.caps
        same_counts = caps.gp_counters == host.gp and caps.fixed_counters == host.fixed
        same_widths = caps.gp_width == host.gp_width and caps.fixed_width == host.fixed_width
        return not (same_counts and same_widths)

    @hookimpl
    def vpmu_counter_allocator(self, vcpu: VcpuPort) -> Any:
        cfg = self.config
        return MediatedAllocator(vcpu, rfc=cfg.mode == "rfc", run_loop=cfg.switch == "run-loop")

    @hookimpl
    def vpmu_pmi_path(self, vcpu: VcpuPort) -> Any:
        return InjectedPmiPath(vcpu)

    def finish(self) -> None:
        for v in self.machine.vcpus:
            v.allocator.account()  # type: ignore[attr-defined]

    def teardown(self) -> None:
        self.finish()

    def host_blind_ns(self, guest_ns: float) -> float:
        # Host perf cannot see the PMU from load to put: all guest time, plus the
        # fastpath loop (not modelled separately).
        return guest_ns
