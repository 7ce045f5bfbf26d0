"""Deliberately broken backends: each breaks one conformance rule, and the suite must say so.

Every one is the AMD PerfMonV2 backend with a single, realistic mistake (the kind a
backend author makes), so a failure can only come from that mistake. ``BROKEN``
maps each backend's name to the rule it breaks and the suite tests that must
fail for it; ``tests/test_conformance_broken.py`` runs the suite over each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

from vpmu_amd import AmdBackend, AmdConfig, AmdPmu

import vpmu_core as vpmu

INT_BIT = 1 << 20  # PERF_CTL interrupt enable
HOST_GUEST = 3 << 40  # PERF_CTL HostOnly, GuestOnly


class Broken(AmdBackend):
    """Base of the broken backends: builds ``Pmu`` instead of AmdPmu."""

    Pmu: type[AmdPmu] = AmdPmu

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        return {"v2": {"backend": cls.name, "generation": "perfmon-v2"}}

    def create_pmu(self, vcpu: vpmu.Vcpu) -> AmdPmu:
        return self.Pmu(vcpu, self.config, self.name)


def broken(name: str, base: type[Broken] = Broken, **attrs: Any) -> type[Broken]:
    """A subclass of ``base`` called ``name``, with its own ``[pmu]`` model."""
    config = type(
        f"Config_{name}",
        (AmdConfig,),
        {"__annotations__": {"backend": Literal[name]}, "__module__": __name__},
    )
    return type(f"Backend_{name}", (base,), {"name": name, "Config": config, **attrs})


# -- MSR map vs CPUID --------------------------------------------------------------------
class CpuidOneShort(Broken):
    def cpuid_leaves(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        leaves = dict(super().cpuid_leaves())
        eax, ebx, ecx, edx = leaves[(0x80000022, 0)]
        leaves[(0x80000022, 0)] = (eax, ebx - 1, ecx, edx)  # one counter fewer than the MSRs
        return leaves


class VendorPmu(AmdPmu):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # declares a new vendor but forgot to change CPUID leaf 0
        self.caps = dataclasses.replace(self.caps, vendor="HygonGenuine")


# -- widths ------------------------------------------------------------------------------
class UnmaskedPmu(AmdPmu):
    def msr_handlers(self) -> list[vpmu.MsrHandler]:
        return [
            dataclasses.replace(h, write=self._unmasked(self.vcpu.counters[h.counter]))
            if h.klass == "counter" and h.counter is not None
            else h
            for h in super().msr_handlers()
        ]

    @staticmethod
    def _unmasked(pmc: vpmu.Pmc) -> Callable[[int], None]:
        def write(value: int) -> None:
            pmc.value = value  # forgot the width: bits 63:48 stick

        return write


# -- overflow, status, PMI ---------------------------------------------------------------
class NoStatusPmu(AmdPmu):
    def record_overflow(self, pmc: vpmu.Pmc) -> None:
        return None  # overflow never reaches GLOBAL_STATUS


class AlwaysIntPmu(AmdPmu):
    def _decode(self, pmc: vpmu.Pmc) -> None:
        super()._decode(pmc)
        pmc.intr = True  # a PMI on every overflow, INT bit or not


# -- event-select qualifiers -------------------------------------------------------------
class NoCmaskPmu(AmdPmu):
    def _decode(self, pmc: vpmu.Pmc) -> None:
        super()._decode(pmc)
        pmc.qual = None  # decodes event and umask only: CMASK/INV/EDGE count like plain


class StickyEdgePmu(AmdPmu):
    def _ctl_writer(self, pmc: vpmu.Pmc) -> Callable[[int], None]:
        write = super()._ctl_writer(pmc)

        def sticky(value: int) -> None:
            state = pmc.edge_state
            write(value)
            pmc.edge_state = state  # the edge detector survives a new event select

        return sticky


class HostOnlyPmu(AmdPmu):
    def _ctl_writer(self, pmc: vpmu.Pmc) -> Callable[[int], None]:
        write = super()._ctl_writer(pmc)

        def keep(value: int) -> None:
            write(value)
            pmc.control |= value & HOST_GUEST  # keeps what KVM's reserved mask clears

        return keep


# -- snapshot ----------------------------------------------------------------------------
class ForgetfulPmu(AmdPmu):
    def load(self, state: dict[str, Any]) -> None:
        state = {**state, "eventsel": [int(s) & ~INT_BIT for s in state["eventsel"]]}
        super().load(state)  # the restored PERF_CTLs lose their interrupt bit


# -- any access sequence -----------------------------------------------------------------
class CrashingPmu(AmdPmu):
    def _write_status_set(self, value: int) -> None:
        if value >> 63:
            raise ValueError("bit 63")  # a Python exception where the guest must see an answer
        super()._write_status_set(value)


# -- event filter ------------------------------------------------------------------------
class NarrowFilter(Broken):
    def event_select_mask(self) -> int:
        return 0x0F  # event select is bits 7:0 and 35:32; KVM drops entries outside the mask


BACKENDS = [
    broken("broken-cpuid", CpuidOneShort),
    broken("broken-vendor", Pmu=VendorPmu),
    broken("broken-width", Pmu=UnmaskedPmu),
    broken("broken-status", Pmu=NoStatusPmu),
    broken("broken-intr", Pmu=AlwaysIntPmu),
    broken("broken-cmask", Pmu=NoCmaskPmu),
    broken("broken-edge", Pmu=StickyEdgePmu),
    broken("broken-hostonly", Pmu=HostOnlyPmu),
    broken("broken-snapshot", Pmu=ForgetfulPmu),
    broken("broken-crash", Pmu=CrashingPmu),
    broken("broken-filter", NarrowFilter),
]

# name -> (rule, the suite tests that must fail for it)
BROKEN: dict[str, tuple[str, list[str]]] = {
    "broken-cpuid": ("MSR map agrees with CPUID", ["test_cpuid_agrees_with_msr_map"]),
    "broken-vendor": ("MSR map agrees with CPUID", ["test_cpuid_vendor_agrees_with_caps"]),
    "broken-width": (
        "write/read masks to the width",
        ["test_write_then_read_masks_to_width", "test_every_msr_takes_edge_values"],
    ),
    "broken-status": ("overflow, status and PMI", ["test_overflow_sets_status"]),
    "broken-intr": ("overflow, status and PMI", ["test_no_pmi_without_interrupt_bit"]),
    "broken-cmask": (
        "event-select qualifiers count cycles and edges",
        [
            "test_cmask_counts_cycles_at_threshold",
            "test_inv_complements_cmask",
            "test_edge_counts_rising_edges",
            "test_event_select_write_restarts_edge_detection",
        ],
    ),
    "broken-edge": (
        "event-select qualifiers count cycles and edges",
        ["test_event_select_write_restarts_edge_detection"],
    ),
    "broken-hostonly": (
        "HostOnly/GuestOnly are dropped on a guest write",
        ["test_host_and_guest_only_bits_are_dropped"],
    ),
    "broken-snapshot": (
        "snapshot/restore is differential",
        ["test_restore_carries_every_register"],
    ),
    "broken-crash": (
        "any access raises nothing but GuestFault",
        ["test_every_msr_takes_edge_values"],
    ),
    "broken-filter": ("event filter allow/deny", ["test_deny_stops_only_the_denied_event"]),
}


@vpmu.hookimpl
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    for backend in BACKENDS:
        register(backend)
