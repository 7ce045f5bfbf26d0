"""Per-vCPU register state and MSR semantics of the Intel architectural PMU.

Every rule cites spec/intel.md. The handlers are closures bound once per vCPU; each
does only its own access: a guest WRMSR looks up nothing beyond the vCPU's dispatch dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mypy_extensions import mypyc_attr

from vpmu_core.allinone import INDEX_BASE
from vpmu_core.backend import VendorPmu
from vpmu_core.counters import FIXED_BASE, EventKey, Pmc
from vpmu_core.errors import GuestFault
from vpmu_core.msr import (
    CAPABILITIES,
    COUNTER,
    DEBUGCTL,
    EVENTSEL,
    FIXED_CTRL,
    GLOBAL_CTRL,
    GLOBAL_STATUS,
    GLOBAL_STATUS_CLR,
    GLOBAL_STATUS_SET,
    METRICS,
    MsrHandler,
    legacy_quirk_rows,
    read_only,
    read_zero,
)
from vpmu_core.qualifiers import qualifier_of

from . import msrs as M
from .caps import caps_of, event_table
from .config import IntelConfig
from .counter_writes import full_width_writer, legacy_counter_writer
from .topdown import EN_PERF_METRICS, L1_EVENTS, L2_EVENTS, SLOTS_KEY, SlotsPmc, TopdownMetrics

if TYPE_CHECKING:
    from vpmu_core.port import VcpuPort


@mypyc_attr(allow_interpreted_subclasses=True)
class IntelPmu(VendorPmu):
    """IA32 architectural PMU v0-v6 of one vCPU.

    Counters are kept by index: with v6 counter bitmaps (CPUID leaf 0x23) GP counter
    ``i`` is ``Pmc(i)`` and its MSRs are PERFEVTSEL0+i, PMC0+i, whatever holes lie below.
    """

    events: dict[str, tuple[EventKey, ...]] = event_table()

    def __init__(self, vcpu: VcpuPort, cfg: IntelConfig, owner: str) -> None:
        super().__init__(vcpu)
        self.cfg = cfg
        self.owner = owner
        self.caps = caps_of(cfg)
        self.version = cfg.version
        self.gp = [Pmc(i, "gp", cfg.gp_width, owner=owner) for i in cfg.gp_indexes]
        self.fixed = [
            (SlotsPmc if i == 3 else Pmc)(
                FIXED_BASE + i,
                "fixed",
                cfg.fixed_width,
                key=(M.FIXED_EVENTS[i][1], M.FIXED_EVENTS[i][2]),
                owner=owner,
            )
            for i in cfg.fixed_indexes
        ]
        # §4: reserved masks of the global registers; an absent counter's bit is reserved
        self.gp_mask = cfg.gp_bits
        present = self.gp_mask | cfg.fixed_bits << FIXED_BASE
        self.global_ctrl_rsvd = ((1 << 64) - 1) & ~present
        self.global_status_rsvd = self.global_ctrl_rsvd & ~(
            M.STATUS_OVF_BUFFER | M.STATUS_COND_CHGD
        )
        # §2: eventsel reserved bits
        rsvd = M.EVTSEL_RESERVED
        if cfg.tsx:
            rsvd &= ~M.IN_TX
        if cfg.pebs_baseline:
            rsvd &= ~M.ADAPTIVE
        if cfg.version >= 6:  # CPUID.23H.0:EBX enumerates UMASK2 and EQ (update_pmu_cap)
            rsvd &= ~(M.EVTSEL_UMASK2 | M.EVTSEL_EQ)
        self.eventsel_rsvd = rsvd
        # §3: FIXED_CTR_CTRL reserved bits
        writable = 0
        for i in cfg.fixed_indexes:  # an absent fixed counter's field is reserved
            writable |= M.FIXED_FIELD_WRITABLE << (4 * i)
            if cfg.pebs_baseline:
                writable |= 1 << (32 + 4 * i)
        self.fixed_ctrl_rsvd = ((1 << 64) - 1) & ~writable
        perf_caps = cfg.perf_capabilities & ~M.PERF_CAP_FW_WRITES
        if cfg.full_width_writes:
            perf_caps |= M.PERF_CAP_FW_WRITES
        self.perf_capabilities = perf_caps
        debugctl_ok = 0
        if cfg.lbr:
            debugctl_ok |= M.DEBUGCTL_LBR | M.DEBUGCTL_FREEZE_LBRS_ON_PMI
        if cfg.bus_lock_detect:
            debugctl_ok |= M.DEBUGCTL_BUS_LOCK_DETECT
        if cfg.tsx:
            debugctl_ok |= M.DEBUGCTL_RTM_DEBUG
        self.debugctl_writable = debugctl_ok
        self.status_set = cfg.version >= 4 and "kvm-no-status-set" not in cfg.quirks
        self.fixed_ctr_ctrl = 0
        self.global_ctrl = 0
        self.global_status = 0
        self.debugctl = 0
        self.by_idx = {pmc.idx: pmc for pmc in self.gp + self.fixed}
        # Called after any decode of the control registers, so a counter that follows
        # them (PERF_METRICS follows fixed counter 3 and bit 48) stays true.
        self.control_listeners: list[Callable[[], None]] = []
        self.metrics: TopdownMetrics | None = None
        # PERF_METRICS exists only where PERF_CAPABILITIES bit 15 can say so: without
        # PDCM KVM's vCPU PERF_CAPABILITIES is 0, and the MSR, RDPMC and bit 48 #GP.
        if cfg.topdown_metrics is not None and cfg.pdcm:
            self.metrics = self._topdown(cfg.topdown_metrics)

    def open_global_bits(self, ctrl: int, status: int) -> None:
        """Un-reserve GLOBAL_CTRL bits ``ctrl`` and GLOBAL_STATUS/OVF_CTRL bits ``status``.

        For an extension's counters and PERF_METRICS; the pending KVM PERF_METRICS
        patches open bit 48 in both masks the same way (spec/intel.md §4).
        """
        self.global_ctrl_rsvd &= ~ctrl
        self.global_status_rsvd &= ~status

    def _topdown(self, n: int) -> TopdownMetrics:
        """PERF_METRICS with ``n`` metrics over fixed counter 3, its enables followed."""
        metrics = TopdownMetrics(INDEX_BASE, n, self.cfg.fixed_width)
        fixed3 = self.by_idx[FIXED_BASE + 3]
        metrics.slots_pmc = fixed3
        keys: list[EventKey] = [SLOTS_KEY, *(self.events[e][0] for e in L1_EVENTS)]
        metrics.bind_keys(keys + list(L2_EVENTS[: n - 4]))
        self.vcpu.views += metrics.views
        self.perf_capabilities |= M.PERF_CAP_PERF_METRICS
        self.open_global_bits(EN_PERF_METRICS, 1 << metrics.idx)
        request = self.vcpu.request_reprogram

        def follow() -> None:
            if metrics.follow_fixed3(fixed3, self.global_ctrl):
                request(metrics)

        self.control_listeners.append(follow)
        return metrics

    def _controls_changed(self) -> None:
        for listener in self.control_listeners:
            listener()

    # ---------------------------------------------------------------- counting
    def pmi_status(self) -> int:
        return self.global_status

    def counters(self) -> list[Pmc]:
        extra: list[Pmc] = [] if self.metrics is None else [self.metrics]
        return self.gp + self.fixed + extra

    def _global_en(self, pmc: Pmc) -> bool:
        if self.version <= 1:
            return True
        return bool((self.global_ctrl >> pmc.idx) & 1)

    def _decode_gp(self, pmc: Pmc) -> None:
        sel = pmc.control
        pmc.key = (sel & 0xFF, (sel >> 8) & 0xFF)
        pmc.qual = qualifier_of(sel)  # §2: CMASK/INV/EDGE reach the host event's raw config
        pmc.usr = bool(sel & M.EVTSEL_USR)
        pmc.os = bool(sel & M.EVTSEL_OS)
        pmc.local_en = bool(sel & M.EVTSEL_EN)
        pmc.intr = bool(sel & M.EVTSEL_INT)
        pmc.global_en = self._global_en(pmc)
        self.track_local_en(pmc)

    def _decode_fixed(self, pmc: Pmc) -> None:
        field = (self.fixed_ctr_ctrl >> (4 * (pmc.idx - FIXED_BASE))) & 0xF
        pmc.control = field
        pmc.os = bool(field & M.FIXED_OS)
        pmc.usr = bool(field & M.FIXED_USR)
        pmc.local_en = bool(field & (M.FIXED_OS | M.FIXED_USR))
        pmc.intr = bool(field & M.FIXED_PMI)
        pmc.global_en = self._global_en(pmc)
        self.track_local_en(pmc)

    def decode_all(self) -> None:
        for pmc in self.gp:
            self._decode_gp(pmc)
        for pmc in self.fixed:
            self._decode_fixed(pmc)
        self._controls_changed()

    def record_overflow(self, pmc: Pmc) -> None:
        # KVM keeps the status bit in software even for v1, where no MSR shows it.
        self.global_status |= 1 << pmc.idx

    def pmi_delivered(self) -> None:
        # §1: KVM emulates legacy Freeze_LBRs_On_PMI for v2/v3 guests with LBRs.
        if 2 <= self.version <= 3 and self.debugctl & M.DEBUGCTL_FREEZE_LBRS_ON_PMI:
            self.debugctl &= ~M.DEBUGCTL_LBR

    def reset(self) -> None:
        for pmc in self.gp:
            pmc.control = 0
        self.fixed_ctr_ctrl = 0
        self.global_status = 0
        self.debugctl = 0
        # §4: post-RESET GLOBAL_CTRL has the GP enable bits set (v2+).
        self.global_ctrl = self.gp_mask if self.version > 1 else 0
        self.decode_all()

    def cpuid_shape(self) -> dict[str, int]:
        """What a guest learns from CPUID; v6 counts the leaf 0x23 bitmaps, as Linux does."""
        eax, _, _, edx = self.vcpu.cpuid_table(0xA)
        version = eax & 0xFF
        shape = {
            "gp_counters": (eax >> 8) & 0xFF,
            "gp_width": (eax >> 16) & 0xFF,
            "fixed_counters": edx & 0x1F if version >= 2 else 0,
            "fixed_width": (edx >> 5) & 0xFF if version >= 2 else 0,
        }
        if version >= 6 and self.vcpu.cpuid_table(M.EXT_LEAF)[0] & (1 << 1):
            gp_bits, fixed_bits, _, _ = self.vcpu.cpuid_table(M.EXT_LEAF, 1)
            shape["gp_counters"] = gp_bits.bit_count()
            shape["fixed_counters"] = fixed_bits.bit_count()
        return shape

    # ------------------------------------------------------------------- RDPMC
    def rdpmc(self, ecx: int) -> int:
        """§7: ECX[31:16] type (0 GP, bit 30 fixed), ECX[15:0] index; anything else #GP."""
        if self.version == 0:
            raise GuestFault(13, "RDPMC with PMU version 0")
        kind = ecx & ~M.RDPMC_INDEX_MASK
        idx = ecx & M.RDPMC_INDEX_MASK
        if kind == 0:
            pmc = self.by_idx.get(idx)
        elif kind == M.RDPMC_FIXED:
            pmc = self.by_idx.get(FIXED_BASE + idx)
        else:
            raise GuestFault(13, f"RDPMC type {kind >> 16:#x} unsupported (ECX {ecx:#x})")
        if pmc is None or pmc.kind != ("gp" if kind == 0 else "fixed"):
            raise GuestFault(13, f"RDPMC index {idx}: no such counter (ECX {ecx:#x})")
        return pmc.read()

    def rdpmc_table(self) -> dict[int, Callable[[], int]]:
        if self.version == 0:
            return {}
        table = {pmc.idx: pmc.read for pmc in self.gp}
        table.update({M.RDPMC_FIXED | (p.idx - FIXED_BASE): p.read for p in self.fixed})
        if self.metrics is not None:
            table[M.RDPMC_METRICS] = self.metrics.read
        return table

    # -------------------------------------------------------------- MSR rows
    def msr_handlers(self) -> list[MsrHandler]:
        rows: list[MsrHandler] = []
        own = self.owner
        request = self.vcpu.request_reprogram
        for pmc in self.gp:
            i = pmc.idx
            rows.append(
                MsrHandler(
                    M.PERFCTR0 + i,
                    f"IA32_PMC{i}",
                    COUNTER,
                    pmc.read,
                    legacy_counter_writer(pmc),
                    host_write=pmc.write,
                    counter=pmc.idx,
                    owner=own,
                )
            )
            if self.cfg.full_width_writes:
                rows.append(
                    MsrHandler(
                        M.PMC0 + i,
                        f"IA32_A_PMC{i}",
                        COUNTER,
                        pmc.read,
                        full_width_writer(pmc),
                        counter=pmc.idx,
                        owner=own,
                    )
                )
            rows.append(
                MsrHandler(
                    M.PERFEVTSEL0 + i,
                    f"IA32_PERFEVTSEL{i}",
                    EVENTSEL,
                    self.control_reader(pmc),
                    self._eventsel_writer(pmc, request),
                    counter=pmc.idx,
                    owner=own,
                )
            )
        if self.version >= 2:
            for pmc in self.fixed:
                i = pmc.idx - FIXED_BASE
                rows.append(
                    MsrHandler(
                        M.FIXED_CTR0 + i,
                        f"IA32_FIXED_CTR{i}",
                        COUNTER,
                        pmc.read,
                        pmc.write,
                        counter=pmc.idx,
                        owner=own,
                    )
                )
            rows += [
                MsrHandler(
                    M.FIXED_CTR_CTRL,
                    "IA32_FIXED_CTR_CTRL",
                    FIXED_CTRL,
                    lambda: self.fixed_ctr_ctrl,
                    self._write_fixed_ctrl,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_CTRL,
                    "IA32_PERF_GLOBAL_CTRL",
                    GLOBAL_CTRL,
                    lambda: self.global_ctrl,
                    self._write_global_ctrl,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_STATUS,
                    "IA32_PERF_GLOBAL_STATUS",
                    GLOBAL_STATUS,
                    lambda: self.global_status,
                    read_only("IA32_PERF_GLOBAL_STATUS"),
                    host_write=self._host_write_status,
                    owner=own,
                ),
                MsrHandler(
                    M.GLOBAL_OVF_CTRL,
                    "IA32_PERF_GLOBAL_OVF_CTRL",
                    GLOBAL_STATUS_CLR,
                    read_zero,
                    self._write_ovf_ctrl,
                    host_write=self._host_write_ovf_ctrl,
                    owner=own,
                ),
            ]
            if self.status_set:
                rows.append(
                    MsrHandler(
                        M.GLOBAL_STATUS_SET,
                        "IA32_PERF_GLOBAL_STATUS_SET",
                        GLOBAL_STATUS_SET,
                        read_zero,
                        self._write_status_set,
                        owner=own,
                    )
                )
        if self.metrics is not None:
            rows.append(
                MsrHandler(
                    M.PERF_METRICS,
                    "IA32_PERF_METRICS",
                    METRICS,
                    self.metrics.read,
                    self.metrics.write,
                    counter=self.metrics.idx,
                    owner=own,
                )
            )
        if self.cfg.pdcm:
            rows.append(
                MsrHandler(
                    M.PERF_CAPABILITIES,
                    "IA32_PERF_CAPABILITIES",
                    CAPABILITIES,
                    lambda: self.perf_capabilities,
                    read_only("IA32_PERF_CAPABILITIES"),
                    host_write=self._host_write_perf_caps,
                    owner=own,
                )
            )
        rows.append(
            MsrHandler(
                M.DEBUGCTL,
                "IA32_DEBUGCTL",
                DEBUGCTL,
                lambda: self.debugctl,
                self._write_debugctl,
                owner=own,
            )
        )
        if self.version < 6:  # KVM's quirk; v6 is modelled as the architecture: absent MSRs #GP
            rows += legacy_quirk_rows({r.msr for r in rows}, own)
        return rows

    # ------------------------------------------------------------- writers
    def _eventsel_writer(self, pmc: Pmc, request: Callable[[Pmc], None]) -> Callable[[int], None]:
        rsvd = self.eventsel_rsvd
        if self.cfg.tsx and pmc.idx == 2:
            rsvd &= ~M.IN_TXCP  # §2: IN_TXCP only on PMC2
        decode = self._decode_gp

        def write(value: int) -> None:
            if value & rsvd:
                raise GuestFault(13, f"PERFEVTSEL{pmc.idx} reserved bits {value & rsvd:#x}")
            if value != pmc.control:
                pmc.control, pmc.edge_state = value, False  # EDGE restarts deasserted
                decode(pmc)
                request(pmc)

        return write

    def _write_fixed_ctrl(self, value: int) -> None:
        if value & self.fixed_ctrl_rsvd:
            raise GuestFault(13, f"FIXED_CTR_CTRL reserved bits {value & self.fixed_ctrl_rsvd:#x}")
        old, self.fixed_ctr_ctrl = self.fixed_ctr_ctrl, value
        changed = old ^ value
        for pmc in self.fixed:
            if (changed >> (4 * (pmc.idx - FIXED_BASE))) & 0xF:
                self._decode_fixed(pmc)
                self.vcpu.request_reprogram(pmc)
        if changed:
            self._controls_changed()

    def _write_global_ctrl(self, value: int) -> None:
        if value & self.global_ctrl_rsvd:
            raise GuestFault(13, f"GLOBAL_CTRL reserved bits {value & self.global_ctrl_rsvd:#x}")
        old, self.global_ctrl = self.global_ctrl, value
        if (old ^ value) & self.local_en_mask:
            self.apply_global_enables(old, value)
        if old != value and self.control_listeners:
            self._controls_changed()

    def _check_status_bits(self, value: int, what: str) -> None:
        if value & self.global_status_rsvd:
            raise GuestFault(13, f"{what} reserved bits {value & self.global_status_rsvd:#x}")

    def _write_ovf_ctrl(self, value: int) -> None:
        self._check_status_bits(value, "GLOBAL_OVF_CTRL")
        self.global_status &= ~value

    def _host_write_ovf_ctrl(self, value: int) -> None:
        self._check_status_bits(value, "GLOBAL_OVF_CTRL")  # accepted, no effect (§4)

    def _host_write_status(self, value: int) -> None:
        self._check_status_bits(value, "GLOBAL_STATUS")
        self.global_status = value

    def _write_status_set(self, value: int) -> None:
        self._check_status_bits(value, "GLOBAL_STATUS_SET")
        self.global_status |= value

    def _host_write_perf_caps(self, value: int) -> None:
        if value != self.perf_capabilities:
            raise GuestFault(13, "PERF_CAPABILITIES is fixed once the vCPU exists")

    def _write_debugctl(self, value: int) -> None:
        # §1: invalid LBR/BTF bits are dropped; any other unsupported bit #GPs.
        allowed = self.debugctl_writable
        if value & ~(allowed | M.DEBUGCTL_LBR | M.DEBUGCTL_BTF):
            raise GuestFault(13, f"DEBUGCTL unsupported bits {value & ~allowed:#x}")
        self.debugctl = value & allowed

    # ---------------------------------------------------------- save / load
    def save(self) -> dict[str, Any]:
        return {
            "eventsel": [p.control for p in self.gp],
            "fixed_ctr_ctrl": self.fixed_ctr_ctrl,
            "global_ctrl": self.global_ctrl,
            "global_status": self.global_status,
            "debugctl": self.debugctl,
        }

    def load(self, state: dict[str, Any]) -> None:
        sels = [int(x) for x in state["eventsel"]]
        if len(sels) != len(self.gp):
            raise ValueError(f"{len(sels)} event selects for {len(self.gp)} GP counters")
        for pmc, sel in zip(self.gp, sels, strict=True):
            pmc.control = sel
        self.fixed_ctr_ctrl = int(state["fixed_ctr_ctrl"])
        self.global_ctrl = int(state["global_ctrl"])
        self.global_status = int(state["global_status"])
        self.debugctl = int(state["debugctl"])
        self.decode_all()
