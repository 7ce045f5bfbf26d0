"""What a configured PMU can do, as data the core and the suite act on.

Vendor differences the core must act on are *data* here, never a test of the
vendor's name: the conformance suite skips on these, the LVTPC takes its masking
rule from ``lvtpc_masks_on_pmi``, and a strategy checks what it needs. A backend
computes them from its config alone (``Backend.caps``), before any vCPU exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Caps:
    """Capabilities of a configured PMU, the vocabulary tests skip on."""

    vendor: str
    version: int
    gp_counters: int
    fixed_counters: int
    gp_width: int
    fixed_width: int
    has_global_ctrl: bool
    has_global_status: bool
    legacy_writes_sign_extend: bool
    lvtpc_masks_on_pmi: bool
    reserved_eventsel_faults: bool
    full_width_writes: bool
    event_select_mask: int  # event-select bits of an eventsel / filter entry
    # A GLOBAL_STATUS_SET register in hardware (Intel v4+, AMD PerfMonV2): what the
    # mediated PMU needs to restore a guest's overflow status (spec/intel.md §10).
    has_global_status_set: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
