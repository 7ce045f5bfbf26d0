"""The mediated PMU's put+load, per vCPU: what each switch touches and how many there were.

Why its own module: it runs at every guest control write (a guest under perf makes
thousands a second), so it is compiled with the engine (setup.py), while the
strategy's config model and interception rules (:mod:`.mediated`) stay
interpreted beside pydantic and pluggy.

No host events: a reprogram refreshes the filter verdict in the hardware enable
bits. The switch's MSR counts follow the guest state sampled at each control
change (where KVM reprograms anyway), and the switches are charged from this
vCPU's own exit tally (``exits_taken``, ``fast_exits``), so no work is added per
guest access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ..counters import Pmc
from ..port import CounterAllocator

if TYPE_CHECKING:
    from ..port import VcpuPort


class MediatedAllocator(CounterAllocator):
    """One vCPU's mediated PMU: per-switch MSR counts and the switches its exits cost.

    ``rfc``: the 2024 RFC v1 (save/restore everything, no fastpath bail-out), else
    6.20. ``run_loop``: put+load around the inner run loop (both designs), else the
    every-exit what-if.
    """

    hears_overflows: ClassVar[bool] = True

    def __init__(self, vcpu: VcpuPort, rfc: bool, run_loop: bool) -> None:
        self.vcpu = vcpu
        self.rfc = rfc
        self.run_loop = run_loop
        self.ledger = vcpu.machine.ledger
        self.per_switch: dict[str, int] = {}
        self._exits_seen = vcpu.exits_taken
        self._fast_seen = vcpu.fast_exits
        values = list(vcpu.counters.values())
        self._gp = [p for p in values if p.kind == "gp"]
        self._fixed = [p for p in values if p.kind == "fixed"]
        events = vcpu.pmu.events
        self._insn_keys = frozenset((*events.get("instructions", ()), *events.get("branches", ())))
        self._sampled_entry = -1
        self.bail_out = False
        self.sample()

    def reprogram(self, pmc: Pmc) -> None:
        self.ledger.events["filter_refresh"] += 1
        entry = self.vcpu.entries
        if entry == self._sampled_entry:
            return  # another PMC of the same entry: nothing changed since the sample
        self._sampled_entry = entry
        self.account()
        if not self.rfc:  # the RFC's counts depend on the counter counts alone
            self.sample()

    def emulated_instruction(self, pmcs: list[Pmc]) -> None:
        return None  # counted in software on the PMC itself (spec/intel.md §10)

    def overflowed(self, pmc: Pmc) -> None:
        # The hardware PMI arrives on the mediated vector while the guest runs.
        if self.vcpu.pmi_pending:
            return  # overflowed together with another counter: the same PMI
        self.vcpu.count_exit("host_pmi")
        self.ledger.pmis["mediated_vector"] += 1

    def release(self, pmc: Pmc) -> None:
        return None

    def sample(self) -> None:
        """MSRs one put + load touches with the guest state as it is now.

        The counts are costs.md §3e's, MSR by MSR: 6.20 (v6 27/44 with the elision
        of b0b6a8d3be16) or the RFC v1 save/restore (23/41), which wrote everything.
        """
        g, f = len(self._gp), len(self._fixed)
        ps = self.per_switch
        ps["lvtpc"] = 2  # host LVTPC to the mediated vector on load, back on put
        if self.rfc:
            # RFC v1 23/41: every counter saved by RDPMC and zeroed, every select and
            # FIXED_CTR_CTRL saved and rewritten, GLOBAL_STATUS restored: 35 WRMSR,
            # 11 RDMSR, 11 RDPMC for G = 8, F = 3 (costs.md §3e).
            ps["rdpmc"] = g + f
            ps["rdmsr"] = g + 3
            ps["wrmsr"] = 2 * (g + f) + g + 5
            ps["elided"] = 0
            self.bail_out = False
            return
        live = sels = fctrl = 0
        insn = False
        keys = self._insn_keys
        for p in self._gp:
            if p.value:
                live += 1
            if p.control:
                sels += 1
            if p.local_en and p.global_en and p.key in keys:
                insn = True
        for p in self._fixed:
            if p.value:
                live += 1
            if p.control:
                fctrl = 1
            if p.local_en and p.global_en and p.key in keys:
                insn = True
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
        """Charge the switches of this vCPU's exits since the last sample.

        Run-loop switch: every exit that leaves the fastpath pays one put+load; 6.20
        sends fastpath exits out too while :attr:`bail_out` held (each counted under
        events[fastpath_bailout]). ``every-exit`` (a what-if) charges every exit.
        """
        vcpu = self.vcpu
        fast = vcpu.fast_exits - self._fast_seen
        self._fast_seen = vcpu.fast_exits
        n = vcpu.exits_taken - self._exits_seen
        self._exits_seen = vcpu.exits_taken
        if self.run_loop:
            if self.bail_out:
                self.ledger.events["fastpath_bailout"] += fast
            else:
                n -= fast
        if n <= 0:
            return
        led = self.ledger
        led.context_switches["pmu_put"] += n
        led.context_switches["pmu_load"] += n
        switch_msrs = led.switch_msrs
        for k, v in self.per_switch.items():
            if v:
                switch_msrs[k] += n * v
