"""What an Intel PMU config can do, known from the config alone (``IntelBackend.capabilities``)."""

from __future__ import annotations

from vpmu_core.caps import Caps
from vpmu_core.counters import EventKey

from . import msrs as M
from .config import IntelConfig


def event_table() -> dict[str, tuple[EventKey, ...]]:
    """Event name -> the encodings that count it (architectural and fixed events)."""
    table: dict[str, list[EventKey]] = {}
    for name, sel, umask in M.ARCH_EVENTS + M.FIXED_EVENTS:
        keys = table.setdefault(name, [])
        if (sel, umask) not in keys:
            keys.append((sel, umask))
    return {k: tuple(v) for k, v in table.items()}


def caps_of(cfg: IntelConfig) -> Caps:
    """Capabilities from the config alone; counts are how many counters exist, not a bound."""
    return Caps(
        vendor="GenuineIntel",
        version=cfg.version,
        gp_counters=cfg.gp_counters,
        fixed_counters=cfg.fixed_counters,
        gp_width=cfg.gp_width,
        fixed_width=cfg.fixed_width,
        has_global_ctrl=cfg.version >= 2,
        has_global_status=cfg.version >= 2,
        legacy_writes_sign_extend=True,
        lvtpc_masks_on_pmi=True,  # Intel's LAPIC masks LVTPC on delivery; KVM emulates it (§8)
        reserved_eventsel_faults=True,
        full_width_writes=cfg.full_width_writes,
        event_select_mask=0xFF,
        event_format=M.EVENT_FORMAT,
        raw_event_mask=M.RAW_EVENT_MASK,
        fixed_only_keys=tuple((sel, umask) for _, sel, umask in M.FIXED_EVENTS if not sel),
        has_global_status_set=cfg.version >= 4 and "kvm-no-status-set" not in cfg.quirks,
    )
