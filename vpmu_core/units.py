"""How vpmu writes a number for a person: one format for every table, line and plot.

Why one module: the same overhead printed as ``21,056,600`` in one table, ``2.1e7`` in
another and ``210566.00%`` in a third made readers compare digits instead of designs.
Times carry their unit (``ns``, ``µs``, ``ms``, ``s``) with three significant digits;
counts have thousands separators; a share of guest time is a percentage below 1000%
and a multiple (``2,106× guest time``) above, never a six-digit percentage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: the units a time is written in, largest first, with the nanoseconds in each
TIME_UNITS = ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns"))
TIME_NAMES = frozenset(name for _, name in TIME_UNITS)
#: a share of guest time from which it is written as a multiple: an overhead ten times
#: the guest's own time is a guest its vPMU starved, and a percentage of it says little
STARVED_PCT = 1000.0


def count(n: int | float | None) -> str:
    """``1234567`` -> ``1,234,567``; a fractional count keeps two decimals."""
    if n is None:
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def sig3(x: float) -> str:
    """Three significant digits, no exponent: ``21.0``, ``0.125``, ``4,240``."""
    if x == 0:
        return "0"
    a = abs(x)
    decimals = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3 if a >= 0.1 else 4
    return f"{x:,.{decimals}f}"


def time_unit(ns: float) -> tuple[float, str]:
    """The unit that reads best for ``ns`` (the largest it is one of): its size in
    nanoseconds and its name; ``ns`` below a nanosecond."""
    a = abs(ns)
    for scale, unit in TIME_UNITS:
        if a >= scale:
            return scale, unit
    return 1.0, "ns"


def duration(ns: float | None) -> str:
    """A time in the unit that reads best: ``800 ns``, ``25.0 µs``, ``21.1 ms``."""
    if ns is None:
        return "-"
    scale, unit = time_unit(ns)
    return f"{sig3(ns / scale)} {unit}"


def percent(pct: float | None) -> str:
    """A share: ``4.24%``; at 1000% and above a multiple, ``2,106× guest time``."""
    if pct is None:
        return "-"
    if abs(pct) >= STARVED_PCT:
        return f"{pct / 100:,.0f}× guest time"
    return f"{pct:.2f}%"


def signed_percent(pct: float | None) -> str:
    """A relative error: ``+12%``, ``-3%``."""
    return "-" if pct is None else f"{pct:+.0f}%"


def figure(value: float | None, unit: str) -> str:
    """A published or modelled figure in its unit: ``4.24%``, ``400 ns``, ``5,198 samples``."""
    if value is None:
        return "n/a"
    if unit == "%":
        return percent(value)
    if unit == "ns":
        return duration(value)
    return f"{count(value)} {unit}".rstrip()


def event(
    key: tuple[int, int] | None, names: Mapping[str, Iterable[tuple[int, int]]] | None = None
) -> str:
    """An event key by the name a backend gives it, else as ``0xC0/0x00`` (select/umask)."""
    if key is None:
        return "-"
    for name, keys in (names or {}).items():
        if key in tuple(keys):
            return name
    sel, umask = key
    return f"0x{sel:02X}/0x{umask:02X}"
