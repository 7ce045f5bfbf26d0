"""Shared machine configs of the grouped tests: a 32-bit counter of four 8-bit fields."""

from __future__ import annotations

from typing import Any

DATA = 0x4000_0000
CTRL = 0x4000_0001
RDPMC = 1 << 28
IDX = 56
LVTPC = 0x834
GLOBAL_STATUS = 0x38E
OVF_CTRL = 0x390
FIELD_EVENTS = ("branches", "branch-misses", "cache-references", "cache-misses")


def four_fields(**extra: Any) -> dict[str, Any]:
    return {
        "name": "quad",
        "msr": DATA,
        "ctrl_msr": CTRL,
        "rdpmc": RDPMC,
        "width": 32,
        "fields": [{"event": e, "offset": 8 * i, "width": 8} for i, e in enumerate(FIELD_EVENTS)],
        **extra,
    }


def grouped_config(
    counters: list[dict[str, Any]] | None = None,
    pmu: dict[str, Any] | None = None,
    **grouped: Any,
) -> dict[str, Any]:
    table: dict[str, Any] = {"counters": [four_fields()] if counters is None else counters}
    table.update(grouped)
    return {
        "pmu": {"backend": "intel", "version": 5, "fixed_counters": 4, **(pmu or {})},
        "extensions": ["grouped"],
        "grouped": table,
    }
