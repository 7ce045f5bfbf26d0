"""How a guest WRMSR to a counter lands: the legacy alias and the full-width one.

Why apart from the PMU: the two behaviours are the whole of spec/intel.md §5 and
depend on the counter alone (its width), not on any control register; the PMU only
picks which one a counter MSR gets (IA32_PMCx always the legacy one, IA32_A_PMCx
the full-width one when PERF_CAPABILITIES.FW_WRITE says so).
"""

from __future__ import annotations

from collections.abc import Callable

from vpmu_core.counters import Pmc
from vpmu_core.errors import GuestFault


def legacy_counter_writer(pmc: Pmc) -> Callable[[int], None]:
    """IA32_PMCx: the low 32 bits, sign-extended from bit 31 to the counter's width."""
    mask = pmc.mask

    def write(value: int) -> None:
        # §5: bits 63:32 ignored, bit 31 replicated upward, then masked to the width
        pmc.value = (((value & 0xFFFF_FFFF) ^ 0x8000_0000) - 0x8000_0000) & mask

    return write


def full_width_writer(pmc: Pmc) -> Callable[[int], None]:
    """IA32_A_PMCx: the whole value, #GP for a bit beyond the counter's width."""
    mask = pmc.mask

    def write(value: int) -> None:
        if value & ~mask:
            raise GuestFault(13, f"{value:#x} exceeds the {pmc.width}-bit counter {pmc.name}")
        pmc.value = value

    return write


__all__ = ["full_width_writer", "legacy_counter_writer"]
