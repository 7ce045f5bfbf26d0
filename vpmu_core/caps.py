"""What a configured PMU can do, as data the core and the suite act on.

Vendor differences the core must act on are *data* here, never a test of the
vendor's name: the conformance suite skips on these, the LVTPC takes its masking
rule from ``lvtpc_masks_on_pmi``, and a strategy checks what it needs. A backend
computes them from its config alone (``Backend.caps``), before any vCPU exists.
"""

from __future__ import annotations

import json
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
    # perf's ``cpu`` PMU format terms (sysfs ``format/``: term -> "config:LO-HI[,LO-HI]")
    # and the attr.config bits a raw event may set (X86_RAW_EVENT_MASK and kin):
    # how ``r01c2`` and ``cpu/event=0xc0,cmask=2/`` read on this PMU (vpmu_core.events).
    event_format: tuple[tuple[str, str], ...] = (
        ("event", "config:0-7"),
        ("umask", "config:8-15"),
    )
    raw_event_mask: int = 0xFFFF
    # Encodings only a fixed counter counts (Intel's pseudo-encodings 0x0300, 0x0400):
    # perf never puts them on a GP counter.
    fixed_only_keys: tuple[tuple[int, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """As JSON holds it (tuples as lists), so a snapshot's shape compares equal."""
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out
