"""perf's event spellings, parsed once for every config, trace and ``Vcpu.retire``.

Why one module: an event is named in a workload's ``events`` list, its ``mix``, a
profile's rate table, a trace's ``run N EVENT`` and ``Vcpu.retire``; each must read
``ref-cycles``, ``r01c2`` and ``cpu/event=0xc0,umask=0x1,cmask=2/`` exactly as
``perf stat -e`` does, and refuse a typo the same way.

Three spellings, as perf's event parser takes them (tools/perf/util/parse-events):

- a generic hardware event (``cycles``, ``ref-cycles``, ...) or perf's alias of one
  (``cpu-cycles``, ``branch-instructions``): the vendor driver's generic-event map
  (Linux's ``intel_perfmon_event_map``, ``amd_*_perfmon_event_map``), which the
  backend gives as its event table;
- ``rNNNN``: a raw ``attr.config`` in hexadecimal, umask << 8 | event, qualifier
  bits above;
- ``cpu/term=value,.../``: the terms of the ``cpu`` PMU's sysfs ``format``
  directory, which the backend gives as :attr:`Caps.event_format` (a bare term is
  1).

Either raw form is then masked as the kernel masks ``attr.config`` of a
``PERF_TYPE_RAW`` event (``X86_RAW_EVENT_MASK``, ``AMD64_RAW_EVENT_MASK`` on AMD;
:attr:`Caps.raw_event_mask`): bits outside it never reach the event select.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .caps import Caps
from .counters import EventKey
from .errors import ConfigError

#: perf's second names of generic events (``perf list``: "cpu-cycles OR cycles").
ALIASES: dict[str, str] = {"cpu-cycles": "cycles", "branch-instructions": "branches"}

#: vpmu's names before it spoke perf's: refused (an alias would keep the old meaning
#: of ``ref-cycles`` ambiguous), but named in the error.
RENAMED: dict[str, str] = {
    "ref-tsc": "ref-cycles",
    "llc-references": "cache-references",
    "llc-misses": "cache-misses",
}

_RAW = re.compile(r"r([0-9a-fA-F]{1,16})")
_PMU = re.compile(r"cpu/([^/]*)/")
_FIELD = re.compile(r"config:(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event as perf would program it.

    ``name`` is the generic name when the encoding is one (``r00c0`` is
    ``instructions``), else perf's raw spelling of the masked config. ``key`` is what
    a counter matches (``(event select, umask)``); ``qual`` the event-select bits
    beyond them (edge, pc, inv, cmask, any) that the guest writes beside them;
    ``base`` names the event without them (``instructions`` for
    ``cpu/event=0xc0,cmask=2/``): what the workload retires and rates.
    """

    name: str
    key: EventKey
    qual: int = 0
    base: str = ""  # the event without its qualifiers: what retires and has a rate

    def __post_init__(self) -> None:
        if not self.base:
            object.__setattr__(self, "base", self.name)


class UnknownEvent(ValueError):
    """A spelling no vendor table, raw form or format term accepts; one line."""


@dataclass(frozen=True)
class Catalog:
    """What one configured PMU accepts: its generic names, format terms and raw mask."""

    names: Mapping[str, tuple[EventKey, ...]]
    event_format: tuple[tuple[str, str], ...]
    raw_event_mask: int

    def base_of(self, spelling: str) -> str:
        """What the engine calls the event ``spelling`` names (without qualifiers), so
        that any spelling of it meets the same rate; an unknown one is its own name (a
        profile may rate an event this PMU cannot count)."""
        try:
            return self.parse(spelling).base
        except UnknownEvent:
            return spelling

    def parse(self, spelling: str) -> EventSpec:
        """The event ``spelling`` names; :class:`UnknownEvent` if none."""
        text = spelling.strip()
        name = ALIASES.get(text, text)
        keys = self.names.get(name)
        if keys is not None:
            return EventSpec(name, keys[0])
        m = _RAW.fullmatch(text)
        if m is not None:
            return self._from_config(int(m.group(1), 16))
        m = _PMU.fullmatch(text)
        if m is not None:
            return self._from_config(self._terms(m.group(1)))
        raise UnknownEvent(self._unknown(text))

    def names_with_aliases(self) -> list[str]:
        return sorted({*self.names, *(a for a, n in ALIASES.items() if n in self.names)})

    def _unknown(self, text: str) -> str:
        known = self.names_with_aliases()
        close = difflib.get_close_matches(text, known, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        if RENAMED.get(text) in self.names:
            hint = f"perf (and vpmu since) calls it {RENAMED[text]}; "
        terms = ",".join(t for t, _ in self.event_format)
        return f"unknown event; {hint}known: {', '.join(known)}; or raw rNNNN / cpu/{terms}/"

    @cached_property
    def _fields(self) -> dict[str, list[int]]:
        """Format term -> the config bits it fills, low bit first (sysfs order); read
        once per catalog (a bad format is the backend's error at the first raw event)."""
        out: dict[str, list[int]] = {}
        for term, spec in self.event_format:
            m = _FIELD.fullmatch(spec)
            if m is None:  # a backend's own format string we cannot read is its bug
                raise ValueError(f"event format {term} = {spec!r}: not config:LO-HI[,LO-HI]")
            bits: list[int] = []
            for part in m.group(1).split(","):
                lo, _, hi = part.partition("-")
                bits += range(int(lo), int(hi or lo) + 1)
            out[term] = bits
        return out

    def _terms(self, body: str) -> int:
        fields = self._fields
        config = 0
        for item in filter(None, (t.strip() for t in body.split(","))):
            term, eq, val = item.partition("=")
            if term == "config":
                bits = list(range(64))
            elif term in fields:
                bits = fields[term]
            else:
                allowed = ", ".join(["config", *fields])
                raise UnknownEvent(f"unknown term {term!r}; terms: {allowed}")
            try:
                value = int(val, 0) if eq else 1
            except ValueError:
                raise UnknownEvent(f"{term}={val!r} is not a number") from None
            if not 0 <= value < 1 << len(bits):
                raise UnknownEvent(f"{term}={val} does not fit its {len(bits)} bits")
            for i, bit in enumerate(bits):
                if value >> i & 1:
                    config |= 1 << bit
        return config

    def _from_config(self, config: int) -> EventSpec:
        fields = self._fields
        config &= self.raw_event_mask
        select = _gather(config, fields.get("event", list(range(8))))
        umask = _gather(config, fields.get("umask", list(range(8, 16))))
        used = sum(1 << b for t in ("event", "umask") for b in fields.get(t, ()))
        qual = config & ~used
        key = (select, umask)
        base = next((n for n, keys in self.names.items() if key in keys), None)
        if base is None:
            base = f"r{config & used:x}"
        return EventSpec(f"r{config:x}" if qual else base, key, qual, base)


def _gather(config: int, bits: list[int]) -> int:
    return sum(1 << i for i, bit in enumerate(bits) if config >> bit & 1)


def check_names(catalog: Catalog, where: str, spellings: list[str]) -> list[EventSpec]:
    """Parse every spelling of a config key; the first bad one is a one-line ConfigError."""
    out = []
    for s in spellings:
        try:
            out.append(catalog.parse(s))
        except UnknownEvent as exc:
            raise ConfigError(where, s, str(exc)) from None
    return out


def config_catalog(config: Any, plugins: Any) -> Catalog:
    """The catalog of the PMU a whole config describes, before any machine exists."""
    backend = plugins.registry["backends"][config.pmu.backend]
    return catalog_of(backend.event_table(config.pmu), backend.capabilities(config.pmu))


def catalog_of(names: Mapping[str, tuple[EventKey, ...]], caps: Caps) -> Catalog:
    """The catalog of a configured PMU: its event table and its caps' format and mask."""
    return Catalog(names, caps.event_format, caps.raw_event_mask)
