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

The switch's MSR counts follow the guest state sampled at each control change
(where KVM reprograms anyway), so no work is added per guest access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..counters import Pmc
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
from ..port import CounterAllocator
from ..strategy import Strategy
from .common import InjectedPmiPath

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
        self._insn_keys: frozenset[tuple[int, int]] = frozenset()
        self._fast_seen = 0
        self.bail_out = False
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
        so the counter lists are built once and the counts are plain loops. The
        counts are costs.md §3e's, MSR by MSR: 6.20 (v6 27/44 with the elision of
        b0b6a8d3be16) or the RFC v1 save/restore (23/41), which wrote everything.
        """
        gp = self._gp
        if gp is None:
            values = self.vcpu.counters.values()
            gp = self._gp = [p for p in values if p.kind == "gp"]
            self._fixed = [p for p in values if p.kind == "fixed"]
            events = self.vcpu.pmu.events
            self._insn_keys = frozenset(
                (*events.get("instructions", ()), *events.get("branches", ()))
            )
        fixed = self._fixed
        live = sels = fctrl = 0
        insn = False
        keys = self._insn_keys
        for p in gp:
            if p.value:
                live += 1
            if p.control:
                sels += 1
            if p.local_en and p.key in keys:
                insn = True
        for p in fixed:
            if p.value:
                live += 1
            if p.control:
                fctrl = 1
            if p.local_en and p.key in keys:
                insn = True
        g, f = len(gp), len(fixed)
        ps = self.per_switch
        ps["lvtpc"] = 2  # host LVTPC to the mediated vector on load, back on put
        if self.strategy.config.mode == "rfc":
            # RFC v1 23/41: every counter saved by RDPMC and zeroed, every select and
            # FIXED_CTR_CTRL saved and rewritten, GLOBAL_STATUS restored: 35 WRMSR,
            # 11 RDMSR, 11 RDPMC for G = 8, F = 3 (costs.md §3e).
            ps["rdpmc"] = g + f
            ps["rdmsr"] = g + 3
            ps["wrmsr"] = 2 * (g + f) + g + 5
            ps["elided"] = 0
            self.bail_out = False
            return
        status = 1 if self.vcpu.pmu.pmi_status() else 0
        # 6.20: GLOBAL_CTRL <- 0, every select and FIXED_CTR_CTRL on load; a counter
        # only if RDPMC differs (elision); on put the non-zero counters, selects and
        # FIXED_CTR_CTRL zeroed; GLOBAL_STATUS fixed up on load and cleared on put.
        ps["rdpmc"] = 2 * (g + f)
        ps["rdmsr"] = 2
        ps["wrmsr"] = 1 + g + 1 + 2 * live + sels + fctrl + 2 * status
        ps["elided"] = g + f - live
        # kvm_pmu_is_fastpath_emulation_allowed(): no fastpath while a PMC counts
        # instructions or branches (6.20 only)
        self.bail_out = insn

    def account(self) -> None:
        """Charge the switches of the exits since the last sample.

        Run-loop switch: every exit that leaves the fastpath pays one put+load; 6.20
        sends fastpath exits out too while :attr:`bail_out` held (each counted under
        events[fastpath_bailout]). ``every-exit`` (a what-if) charges every exit.
        """
        tap = self.exits
        fast = tap.fast - self._fast_seen
        self._fast_seen = tap.fast
        now = tap.all
        n = now - self._exits_seen
        self._exits_seen = now
        if self.strategy.config.switch == "run-loop":
            if self.bail_out:
                self.ledger.events["fastpath_bailout"] += fast
            else:
                n -= fast
        if n <= 0:
            return
        self.ledger.context_switches["pmu_put"] += n
        self.ledger.context_switches["pmu_load"] += n
        for k, v in self.per_switch.items():
            if v:
                self.ledger.switch_msrs[k] += n * v


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
