"""Which counters count an event: the vCPU's matcher, on a cache miss.

Why its own module: :class:`~vpmu_core.vcpu.Vcpu` keeps the hot path (a dict hit
and a loop of ``advance``); what fills that cache -- resolving a name perf would
accept to its event keys, and the architectural conditions under which a counter
counts -- is looked up on a miss only, and read on its own when a count is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

from .counters import EventKey, Pmc
from .events import UnknownEvent, catalog_of
from .port import Event, PmuState

Lists = dict[tuple[Event, int], list[Pmc]]
#: a vCPU's matcher lists kept for one global-control value: ``_match``, ``_qmatch``,
#: the two instruction lists and whether one holds a qualified counter
Stashed = tuple[Lists, Lists, list[Pmc] | None, list[Pmc] | None, bool]


def event_keys(pmu: PmuState, event: Event) -> tuple[EventKey, ...]:
    """The (event select, umask) keys ``event`` stands for on ``pmu``.

    A name the backend lists, or any of perf's other spellings (an alias, rNNNN,
    cpu/event=..,umask=../); ValueError for an unknown one or one carrying counting
    qualifiers (they say how a counter counts, not what happened).
    """
    if isinstance(event, tuple):
        return (event,)
    keys = pmu.events.get(event)
    if keys is not None:
        return keys
    try:
        spec = catalog_of(pmu.events, pmu.caps).parse(event)
    except UnknownEvent as exc:
        raise ValueError(f"retire: {event!r}: {exc}") from None
    if spec.qual:
        raise ValueError(
            f"retire: {event!r} has qualifier bits {spec.qual:#x}: they say how a counter "
            "counts, not what happened; retire the event itself"
        )
    return pmu.events.get(spec.name, (spec.key,))


def counting_now(pmcs: Iterable[Pmc], keys: tuple[EventKey, ...], user: bool) -> list[Pmc]:
    """The counters of ``pmcs`` that count ``keys`` at user (``user``) or kernel level
    now: enabled locally and globally, allowed by the event filter, backed by a running
    host event, and filtering on that privilege level."""
    return [pmc for pmc in pmcs if pmc.key in keys and pmc.counts_at(user)]


__all__ = ["Lists", "Stashed", "counting_now", "event_keys"]
