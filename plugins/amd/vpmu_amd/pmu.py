"""Per-vCPU register state and MSR semantics of the AMD core PMU under KVM.

Every rule cites spec/amd-and-topdown.md. Where Intel raises #GP, AMD (and KVM's
SVM vPMU) drops the bad part of a write silently: reserved PERF_CTL bits,
GLOBAL_CTL bits past the last counter, writes to the read-only GLOBAL_STATUS. The
handlers are closures bound once per vCPU, as on Intel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypy_extensions import mypyc_attr

from vpmu_core.backend import Caps, VendorPmu
from vpmu_core.counters import EventKey, Pmc
from vpmu_core.errors import GuestFault
from vpmu_core.msr import (
    COUNTER,
    EVENTSEL,
    GLOBAL_CTRL,
    GLOBAL_STATUS,
    GLOBAL_STATUS_CLR,
    GLOBAL_STATUS_SET,
    MsrHandler,
    legacy_quirk_rows,
)
from vpmu_core.qualifiers import qualifier_of

from . import msrs as M
from .config import AmdConfig

if TYPE_CHECKING:
    from vpmu_core.port import VcpuPort

MASK64 = (1 << 64) - 1


def event_table(event_map: str) -> dict[str, tuple[EventKey, ...]]:
    """The generic events of one of Linux's AMD event maps (msrs.EVENT_MAPS)."""
    return {name: ((sel, umask),) for name, sel, umask in M.EVENT_MAPS[event_map]}


def caps_of(cfg: AmdConfig) -> Caps:
    v2 = cfg.version >= 2
    return Caps(
        vendor="AuthenticAMD",
        version=cfg.version,
        gp_counters=cfg.gp_counters,
        fixed_counters=0,
        gp_width=M.COUNTER_WIDTH,
        fixed_width=0,
        has_global_ctrl=v2,
        has_global_status=v2,
        has_global_status_set=v2,  # STATUS_SET, emulated since Linux 6.17 (§3.2)
        legacy_writes_sign_extend=False,  # §3.3: AMD counter writes are never sign-extended
        # §3.5: AMD's local APIC leaves LVTPC unmasked when it delivers a PMI, and KVM
        # follows it since 2024. The quirk restores the 2023 bug that masked it (§8.1).
        lvtpc_masks_on_pmi="lvtpc-masked-on-pmi" in cfg.quirks,
        reserved_eventsel_faults=False,  # §2.2: reserved bits are cleared, never #GP
        full_width_writes=True,  # every counter write takes all 48 bits
        event_select_mask=M.EVENT_SELECT_MASK,
        event_format=M.EVENT_FORMAT,
        raw_event_mask=M.RAW_EVENT_MASK,
    )


@mypyc_attr(allow_interpreted_subclasses=True)
class AmdPmu(VendorPmu):
    """AMD legacy / core-extension / PerfMonV2 PMU of one vCPU."""

    def __init__(self, vcpu: VcpuPort, cfg: AmdConfig, owner: str) -> None:
        super().__init__(vcpu)
        self.events = event_table(cfg.event_map)
        self.cfg = cfg
        self.owner = owner
        self.caps = caps_of(cfg)
        self.version = cfg.version
        self.gp = [Pmc(i, "gp", M.COUNTER_WIDTH, owner=owner) for i in range(cfg.gp_counters)]
        # §3.1: v2 global_ctrl_rsvd = global_status_rsvd = ~((1 << nr_gp) - 1)
        self.global_mask = (1 << cfg.gp_counters) - 1
        self.zero_ctl_at_reset = "global-ctl-zero-at-reset" in cfg.quirks
        self.global_ctl = 0
        self.by_idx = {pmc.idx: pmc for pmc in self.gp}
        # KVM's software global_status: kept on v1 too, where no MSR shows it (§3.5).
        self.status = 0

    @property
    def global_status(self) -> int:
        """The overflow status the guest can see: none before PerfMonV2."""
        return self.status if self.version >= 2 else 0

    def pmi_status(self) -> int:
        return self.global_status

    # ---------------------------------------------------------------- counting
    def counters(self) -> list[Pmc]:
        return list(self.gp)

    def _decode(self, pmc: Pmc) -> None:
        sel = pmc.control
        pmc.key = (M.event_select(sel), (sel >> 8) & 0xFF)
        # §2.1: Edge/Inv/CntMask are in KVM's raw event mask and reach the host event;
        # HostOnly/GuestOnly never get here (cleared on write, §2.2).
        pmc.qual = qualifier_of(sel)
        pmc.usr = bool(sel & M.EVTSEL_USR)
        pmc.os = bool(sel & M.EVTSEL_OS)
        pmc.local_en = bool(sel & M.EVTSEL_EN)
        pmc.intr = bool(sel & M.EVTSEL_INT)
        # §3.4: v1 is always globally enabled; v2 gates on GLOBAL_CTL[n].
        pmc.global_en = self.version < 2 or bool((self.global_ctl >> pmc.idx) & 1)
        self.track_local_en(pmc)

    def decode_all(self) -> None:
        for pmc in self.gp:
            self._decode(pmc)

    def record_overflow(self, pmc: Pmc) -> None:
        self.status |= 1 << pmc.idx

    def reset(self) -> None:
        for pmc in self.gp:
            pmc.control = 0
        self.status = 0
        # §3.1: post-RESET GLOBAL_CTL has every GP enable bit set; before the 2024
        # fix KVM left it 0, and v1-only guest software never counted (§8.3).
        if self.version >= 2 and not self.zero_ctl_at_reset:
            self.global_ctl = self.global_mask
        else:
            self.global_ctl = 0
        self.decode_all()

    # ------------------------------------------------------------------- RDPMC
    def rdpmc_table(self) -> dict[int, Callable[[], int]]:
        return {i: pmc.read for i, pmc in enumerate(self.gp)}

    def cpuid_shape(self) -> dict[str, int]:
        """Counters the guest derives from CPUID the way Linux's AMD driver does (§1.2)."""
        ext = self.vcpu.cpuid_table(0x80000001)[2] & M.PERFCTR_CORE
        eax, ebx, _, _ = self.vcpu.cpuid_table(0x80000022)
        if eax & M.PERFMON_V2:
            gp = ebx & 0xF
        else:
            gp = 6 if ext else 4
        return {
            "gp_counters": gp,
            "gp_width": M.COUNTER_WIDTH,
            "fixed_counters": 0,
            "fixed_width": 0,
        }

    def rdpmc(self, ecx: int) -> int:
        """§3.3: ECX is the counter index, no type bits; ECX >= nr_gp is #GP."""
        if ecx >= len(self.gp):
            raise GuestFault(13, f"RDPMC index {ecx:#x} >= {len(self.gp)} counters")
        return self.gp[ecx].value

    # -------------------------------------------------------------- MSR rows
    def msr_handlers(self) -> list[MsrHandler]:
        rows: list[MsrHandler] = []
        own = self.owner
        for i, pmc in enumerate(self.gp):
            read_ctl = self.control_reader(pmc)
            write_ctl = self._ctl_writer(pmc)
            write_ctr = pmc.write  # §3.3: bits 63:48 dropped, no sign extension, no #GP
            # §1.1: the K7 MSRs are the first four counters, also when the
            # core-extension MSRs exist (same Pmc, so they alias).
            if i < 4:
                rows += [
                    MsrHandler(
                        M.K7_EVNTSEL0 + i,
                        f"K7_EVNTSEL{i}",
                        EVENTSEL,
                        read_ctl,
                        write_ctl,
                        counter=pmc.idx,
                        owner=own,
                    ),
                    MsrHandler(
                        M.K7_PERFCTR0 + i,
                        f"K7_PERFCTR{i}",
                        COUNTER,
                        pmc.read,
                        write_ctr,
                        counter=pmc.idx,
                        owner=own,
                    ),
                ]
            if self.cfg.core_ext:
                rows += [
                    MsrHandler(
                        M.F15H_PERF_CTL0 + 2 * i,
                        f"F15H_PERF_CTL{i}",
                        EVENTSEL,
                        read_ctl,
                        write_ctl,
                        counter=pmc.idx,
                        owner=own,
                    ),
                    MsrHandler(
                        M.F15H_PERF_CTR0 + 2 * i,
                        f"F15H_PERF_CTR{i}",
                        COUNTER,
                        pmc.read,
                        write_ctr,
                        counter=pmc.idx,
                        owner=own,
                    ),
                ]
        if self.version >= 2:
            rows += [
                MsrHandler(
                    M.GLOBAL_STATUS,
                    "PERF_CNTR_GLOBAL_STATUS",
                    GLOBAL_STATUS,
                    lambda: self.status,
                    _ignore,
                    host_write=self._host_write_status,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_CTL,
                    "PERF_CNTR_GLOBAL_CTL",
                    GLOBAL_CTRL,
                    lambda: self.global_ctl,
                    self._write_global_ctl,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_STATUS_CLR,
                    "PERF_CNTR_GLOBAL_STATUS_CLR",
                    GLOBAL_STATUS_CLR,
                    _zero,
                    self._write_status_clr,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_STATUS_SET,
                    "PERF_CNTR_GLOBAL_STATUS_SET",
                    GLOBAL_STATUS_SET,
                    _zero,
                    self._write_status_set,
                    owner=own,
                ),
            ]
        rows += legacy_quirk_rows({r.msr for r in rows}, own)
        return rows

    # ------------------------------------------------------------- writers
    def _ctl_writer(self, pmc: Pmc) -> Callable[[int], None]:
        keep = MASK64 & ~M.EVTSEL_RESERVED
        decode = self._decode
        request = self.vcpu.request_reprogram

        def write(value: int) -> None:
            # §2.2: reserved bits (HostOnly/GuestOnly included) are cleared, never
            # #GP; only a change of the masked value asks for a reprogram.
            value &= keep
            if value != pmc.control:
                pmc.control, pmc.edge_state = value, False  # EDGE restarts deasserted
                decode(pmc)
                request(pmc)

        return write

    def _write_global_ctl(self, value: int) -> None:
        # §3.3: bits past the last counter are dropped silently.
        value &= self.global_mask
        old, self.global_ctl = self.global_ctl, value
        if (old ^ value) & self.local_en_mask:
            self.apply_global_enables(old, value)

    def _host_write_status(self, value: int) -> None:
        # §3.3: a host write (migration) may set only existing counters' bits.
        if value & ~self.global_mask:
            raise GuestFault(13, f"GLOBAL_STATUS reserved bits {value & ~self.global_mask:#x}")
        self.status = value

    def _write_status_clr(self, value: int) -> None:
        self.status &= ~value  # no reserved check: all-ones is what Linux writes (§1.3)

    def _write_status_set(self, value: int) -> None:
        self.status |= value & self.global_mask

    # ---------------------------------------------------------- save / load
    def save(self) -> dict[str, Any]:
        return {
            "eventsel": [p.control for p in self.gp],
            "global_ctl": self.global_ctl,
            "global_status": self.status,
        }

    def load(self, state: dict[str, Any]) -> None:
        sels = [int(x) for x in state["eventsel"]]
        if len(sels) != len(self.gp):
            raise ValueError(f"{len(sels)} event selects for {len(self.gp)} GP counters")
        for pmc, sel in zip(self.gp, sels, strict=True):
            pmc.control = sel & ~M.EVTSEL_RESERVED
        self.global_ctl = int(state["global_ctl"]) & (self.global_mask if self.version >= 2 else 0)
        self.status = int(state["global_status"]) & self.global_mask
        self.decode_all()


def _zero() -> int:
    return 0


def _ignore(value: int) -> None:
    """§1.3: GLOBAL_STATUS is read-only; a guest write is dropped without #GP."""
    return None
