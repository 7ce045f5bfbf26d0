"""``mediated``: the KVM mediated PMU, merged for 6.20 (spec/intel.md §10, costs.md §3).

Why it is cheap on PMU accesses and dear on transitions: the guest owns the
hardware PMU while its context is loaded. Counter MSRs and the GLOBAL_* registers
pass through (no exit) when the guest's counter counts match the host's, RDPMC
too; event selects and FIXED_CTR_CTRL are always intercepted so the event filter
can be enforced by masking hardware enable bits (no perf event is ever created).
The price is a PMU context load and put around the run loop (``switch =
"run-loop"``, merged) or at every exit (``"every-exit"``, the 2024 RFC): every MSR
written is counted, writes of a value already in hardware are elided (commit
b0b6a8d3be16), and GLOBAL_CTRL rides the VMCS. While loaded, host perf is blind.

The switch's MSR counts follow the guest state sampled at each control change
(where KVM reprograms anyway), so no work is added per guest access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..counters import Pmc
from ..errors import ConfigError
from ..hookspecs import hookimpl
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
from ..port import CounterAllocator
from ..strategy import Strategy
from .common import InjectedPmiPath

if TYPE_CHECKING:
    from ..port import VcpuPort

GLOBALS = (GLOBAL_CTRL, GLOBAL_STATUS, GLOBAL_STATUS_CLR, GLOBAL_STATUS_SET)


class MediatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["mediated"]
    switch: Literal["run-loop", "every-exit"] = Field(
        "run-loop",
        description="where the guest PMU context is loaded/put: around the run loop "
        "(merged 6.20) or at every VM exit/entry (the 2024 RFC, costs.md §3b)",
    )
    passthrough_controls: bool = Field(
        False,
        description="also pass event selects and FIXED_CTR_CTRL through (the 'all "
        "passthrough' column of costs.md §3b); the event filter then cannot be enforced",
    )


class ExitTap(dict[str, int]):
    """This vCPU's exits, forwarded to the machine's ledger as they happen.

    Why: the PMU context is switched per exit *of this vCPU*; counting the
    machine-wide total would charge every vCPU for every other vCPU's exits. Only
    exits pass through here (a pass-through access never touches it), so the
    forwarding costs nothing on the mediated hot path.
    """

    __slots__ = ("all", "fast", "ledger")

    def __init__(self, ledger: dict[str, int]) -> None:
        super().__init__()
        self.ledger = ledger
        self.all = 0
        self.fast = 0

    def __missing__(self, key: str) -> int:
        return 0

    def __setitem__(self, key: str, value: int) -> None:
        n = value - self.get(key, 0)
        super().__setitem__(key, value)
        self.ledger[key] += n
        self.all += n
        if key.startswith("fastpath:"):
            self.fast += n


class MediatedAllocator(CounterAllocator):
    """No host events: a reprogram refreshes the filter verdict in the HW enable bits."""

    def __init__(self, vcpu: VcpuPort, strategy: Mediated) -> None:
        self.vcpu = vcpu
        self.strategy = strategy
        self.ledger = vcpu.machine.ledger
        self.per_switch: dict[str, int] = {}
        self._exits_seen = 0
        self.exits = ExitTap(self.ledger.exits)
        vcpu.use_exit_counter(self.exits)
        self._gp: list[Pmc] | None = None
        self._sampled_entry = -1
        self._fixed: list[Pmc] = []
        self.sample()

    def reprogram(self, pmc: Pmc) -> None:
        self.ledger.events["filter_refresh"] += 1
        entry = self.vcpu.entries
        if entry == self._sampled_entry:
            return  # another PMC of the same entry: nothing changed since the sample
        self._sampled_entry = entry
        self.account()
        self.sample()

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        return None  # counted in software on the PMC itself (spec/intel.md §10)

    hears_overflows: ClassVar[bool] = True

    def overflowed(self, pmc: Pmc) -> None:
        # The hardware PMI arrives on the mediated vector while the guest runs.
        if self.vcpu.pmi_pending:
            return  # overflowed together with another counter: the same PMI
        self.exits["host_pmi"] += 1
        self.ledger.pmis["mediated_vector"] += 1

    def release(self, pmc: Pmc) -> None:
        return None

    def sample(self) -> None:
        """MSRs one put + load touches with the guest state as it is now.

        Runs at every control write (a guest under perf makes thousands a second),
        so the counter lists are built once and the counts are plain loops.
        """
        gp = self._gp
        if gp is None:
            values = self.vcpu.counters.values()
            gp = self._gp = [p for p in values if p.kind == "gp"]
            self._fixed = [p for p in values if p.kind == "fixed"]
        fixed = self._fixed
        live_values = sels = fctrl = 0
        for p in gp:
            if p.value:
                live_values += 1
            if p.control:
                sels += 1
        for p in fixed:
            if p.value:
                live_values += 1
            if p.control:
                fctrl = 1
        status = 1 if self.vcpu.pmu.pmi_status() else 0
        n_counters = len(gp) + len(fixed)
        n_ctrl = len(gp) + (1 if fixed else 0)
        # load: RDPMC compare + counter write if it differs; eventsel_hw, FIXED_CTR_CTRL,
        # GLOBAL_STATUS made equal; put: save by RDPMC, read status, zero what is non-zero.
        writes = 2 * (live_values + sels + fctrl) + 2 * status
        possible = 2 * (n_counters + n_ctrl) + 2
        ps = self.per_switch
        ps["rdpmc"] = 2 * n_counters
        ps["rdmsr"] = 1
        ps["wrmsr"] = writes
        ps["elided"] = possible - writes

    def account(self) -> None:
        """Charge the switches of the exits since the last sample."""
        tap = self.exits
        now = tap.all if self.strategy.config.switch == "every-exit" else tap.all - tap.fast
        n = now - self._exits_seen
        self._exits_seen = now
        if n <= 0:
            return
        self.ledger.context_switches["pmu_put"] += n
        self.ledger.context_switches["pmu_load"] += n
        for k, v in self.per_switch.items():
            self.ledger.switch_msrs[k] += n * v


class Mediated(Strategy):
    """The guest owns the PMU while loaded; only controls (and mismatches) exit."""

    name: ClassVar[str] = "mediated"
    Config: ClassVar[type[BaseModel]] = MediatedConfig
    transition_msrs_per_exit: ClassVar[int] = 3  # GLOBAL_CTRL: load guest, save guest, host 0
    shardable: ClassVar[bool] = True

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        backend = plugins.registry["backends"][config.pmu.backend](config.pmu, None)
        caps = backend.caps()
        if not (caps.has_global_status_set and caps.full_width_writes):
            raise ConfigError(
                "strategy.name",
                "mediated",
                "the mediated PMU needs a host PMU with GLOBAL_STATUS_SET and full-width "
                "counter writes (Intel v4+ with PERF_CAP_FW_WRITES, or AMD PerfMonV2); "
                f"this PMU has version {caps.version}, full-width writes "
                f"{caps.full_width_writes}",
            )
        host = config.host
        if host.nmi_watchdog or host.perf_record:
            raise ConfigError(
                "host",
                "nmi_watchdog" if host.nmi_watchdog else "perf_record",
                "the mediated PMU cannot be created while the host has system-wide perf "
                "events (perf_create_mediated_pmu fails, spec/intel.md §10)",
            )

    def _counts_match(self, vcpu: VcpuPort) -> bool:
        """GLOBAL_* pass through only if the guest has the host's counters (§10)."""
        host = vcpu.machine.host
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
            return None if self._counts_match(vcpu) else reason
        if k in (EVENTSEL, FIXED_CTRL):
            return None if self.config.passthrough_controls else reason
        return reason

    def rdpmc_exits(self, vcpu: VcpuPort) -> bool:
        """RDPMC runs natively only if counts *and* widths equal the host's (spec §7)."""
        host = vcpu.machine.host
        caps = vcpu.pmu.caps
        same_counts = caps.gp_counters == host.gp and caps.fixed_counters == host.fixed
        gp_width = host.cfg.gp_width or caps.gp_width
        fixed_width = host.cfg.fixed_width or caps.fixed_width
        same_widths = caps.gp_width == gp_width and caps.fixed_width == fixed_width
        return not (same_counts and same_widths)

    @hookimpl
    def vpmu_counter_allocator(self, vcpu: VcpuPort) -> Any:
        return MediatedAllocator(vcpu, self)

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
