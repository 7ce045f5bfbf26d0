"""The guest's perf driver, as the MSR sequences it issues.

Workloads never hardcode an MSR: they ask the machine for the vCPU's
:class:`GuestDriver` (``machine.guest_driver(vcpu)``) and call its verbs, which each
vendor turns into the accesses Linux's ``arch/x86/events`` driver makes on that
vendor. Every verb goes through the vCPU's guest face (``wrmsr``/``rdpmc``), so it
exits, retires instructions and faults exactly like a real guest's would.

Which driver a guest runs is the guest's choice, not the backend's: Linux picks it
from the CPU vendor in CPUID leaf 0 (``init_hw_perf_events`` in
``arch/x86/events/core.c``: Intel -> ``intel_pmu_init``, AMD and Hygon ->
``amd_pmu_init``). A driver plugin declares the vendor strings it serves
(:attr:`GuestDriver.vendors`, registered with ``vpmu_register_guest_drivers``), so a
new backend whose CPUID says ``HygonGenuine`` gets the AMD driver without naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from mypy_extensions import mypyc_attr

from .counters import FIXED_BASE, EventKey
from .events import Catalog, EventSpec, catalog_of
from .msr import vendor_of

if TYPE_CHECKING:
    from .port import GuestCpu


class PmiClient(Protocol):
    """What the guest's perf core does inside the vendor PMI handler.

    The vendor driver owns the MSR sequence; the perf core (a workload's model of
    ``kernel/events/core.c``) owns the counts. ``update`` is x86_perf_event_update
    after each counter read; ``rearm`` returns the raw value x86_perf_event_set_period
    writes (None: nothing to re-arm); ``overflowed`` is perf_event_overflow, which
    may stop the event (throttling) through the driver's own verbs.
    """

    def update(self, idx: int, raw: int) -> None: ...

    def rearm(self, idx: int) -> int | None: ...

    def overflowed(self, idx: int) -> None: ...


class RearmTable:
    """The simplest client: re-arm each overflowed counter with a fixed value."""

    def __init__(self, rearm: Mapping[int, int]) -> None:
        self.table = rearm

    def update(self, idx: int, raw: int) -> None:
        return None

    def rearm(self, idx: int) -> int | None:
        return self.table.get(idx)

    def overflowed(self, idx: int) -> None:
        return None


def as_client(rearm: Mapping[int, int] | PmiClient) -> PmiClient:
    """Accept the old ``{idx: value}`` form of ``handle_pmi`` as well as a client."""
    # a Mapping is told apart by what a client has (an ABC isinstance per PMI is slow)
    if callable(getattr(rearm, "overflowed", None)):
        return cast(PmiClient, rearm)
    return RearmTable(cast(Mapping[int, int], rearm))


UpdateFn = Callable[[int, int], None]

GpEvent = EventKey | EventSpec
"""What a GP counter is programmed with: an ``(event select, umask)`` key, or an
:class:`~vpmu_core.events.EventSpec` whose qualifier bits (edge, inv, cmask, ...)
go into the event select beside them."""


def encoding(event: GpEvent) -> tuple[int, int, int]:
    """``(event select, umask, qualifier bits)`` of what a driver programs."""
    if isinstance(event, EventSpec):
        return event.key[0], event.key[1], event.qual
    return event[0], event[1], 0


def hw_config(key: GpEvent, usr: bool, os: bool, intr: bool) -> int:
    """perf's hwc->config without the enable bit, as both vendors' drivers write it.

    The event select's bits 7:0 and (AMD's) 11:8 at bits 35:32, the umask, a raw
    event's qualifier bits, and USR (16), OS (17), INT (20), which sit at the same
    place on Intel and AMD (ARCH_PERFMON_EVENTSEL_*).
    """
    sel, umask, qual = encoding(key)
    value = (sel & 0xFF) | ((sel & 0xF00) << 24) | ((umask & 0xFF) << 8) | qual
    value |= (1 << 16 if usr else 0) | (1 << 17 if os else 0)
    return value | (1 << 20 if intr else 0)


#: the guest kernel a driver models when nobody says: today's Linux ([guest] kernel)
DEFAULT_KERNEL = (6, 20)


def cpuid_vendor(cpu: GuestCpu) -> str:
    """The vendor string the guest kernel read from CPUID leaf 0 at boot: its driver."""
    return vendor_of(cpu.cpuid_table(0))


@mypyc_attr(allow_interpreted_subclasses=True)
class GuestDriver:
    """Vendor-neutral verbs of a guest PMU driver.

    ``name`` is how ``vpmu plugins`` lists it; ``vendors`` the CPUID vendor strings
    the guest kernel runs it on.
    """

    name: ClassVar[str] = ""
    vendors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, vcpu: GuestCpu) -> None:
        self.vcpu = vcpu
        # The guest kernel's (major, minor): the machine sets it from [guest] kernel;
        # a driver issues the MSR sequences of that version (spec/costs.md §3e).
        self.kernel: tuple[int, int] = DEFAULT_KERNEL
        caps = vcpu.pmu.caps
        self.gp_counters = caps.gp_counters
        self.fixed_counters = caps.fixed_counters
        # perf's spellings on this PMU (:mod:`vpmu_core.events`), built once: the
        # driver reads an event name at every counter it programs
        self.catalog: Catalog = catalog_of(vcpu.pmu.events, caps)

    def use_kernel(self, version: tuple[int, int]) -> None:
        """Issue the MSR sequences of guest kernel ``version`` ([guest] kernel). A driver
        decides here, once, what depends on the version, never per access."""
        self.kernel = version

    def event(self, spelling: str | EventSpec) -> EventSpec:
        """``spelling`` as perf reads it on this PMU; ValueError (one line) if unknown."""
        return spelling if isinstance(spelling, EventSpec) else self.catalog.parse(spelling)

    def gp_key(self, event: str) -> EventKey:
        """The ``(event select, umask)`` a GP counter uses for ``event``."""
        return self.event(event).key

    def fixed_index(self, event: str | EventSpec) -> int | None:
        """The fixed counter perf puts ``event`` on, if any.

        Linux's FIXED_EVENT_CONSTRAINTs match the whole config, so an event with
        qualifier bits (cmask, inv, edge) never lands on a fixed counter.
        """
        spec = self.event(event)
        if spec.qual:
            return None
        keys = self.vcpu.pmu.events.get(spec.name, (spec.key,))
        for pmc in self.vcpu.pmu.counters():
            if pmc.kind == "fixed" and pmc.key in keys:
                return pmc.idx - FIXED_BASE
        return None

    def gp_allowed(self, event: str | EventSpec) -> bool:
        """Whether a GP counter may count ``event``: not a fixed counter's pseudo-encoding
        (Intel's ref-cycles 0x0300 is FIXED_EVENT_CONSTRAINT(0x0300, 2) only)."""
        return self.event(event).key not in self.vcpu.pmu.caps.fixed_only_keys

    # Vendor verbs ------------------------------------------------------------
    def program_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        raise NotImplementedError

    def program_fixed(self, i: int, *, usr: bool, os: bool, intr: bool = False) -> None:
        raise NotImplementedError

    def stop_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        """Write GP counter ``i``'s config with the enable bit clear (perf's disable_event)."""
        raise NotImplementedError

    def start_gp(self, i: int, key: GpEvent, *, usr: bool, os: bool, intr: bool = False) -> None:
        """x86_pmu_start's enable_event while perf has the PMU disabled.

        Intel and AMD v2 write the enable bit at once; AMD v1 defers it to
        enable_all (spec amd-and-topdown.md §4.4, §6 step 3).
        """
        self.program_gp(i, key, usr=usr, os=os, intr=intr)

    def stop_fixed(self, i: int) -> None:
        """intel_pmu_disable_fixed: clear fixed counter ``i``'s field."""
        raise NotImplementedError

    def read_status(self) -> int:
        """The overflow status register, where the vendor has one (else 0)."""
        return 0

    def ack_status(self, status: int) -> None:
        """Clear ``status`` bits, where the vendor has a status register."""

    def write_counter(self, idx: int, value: int) -> None:
        raise NotImplementedError

    def read_counter(self, idx: int) -> int:
        raise NotImplementedError

    def enable_all(self) -> None:
        raise NotImplementedError

    def disable_all(self) -> None:
        raise NotImplementedError

    def handle_pmi(self, rearm: Mapping[int, int] | PmiClient) -> int:
        """The guest's PMI handler, as the vendor's Linux driver issues it.

        ``rearm`` maps each overflowed PMC index to the value it is re-armed with,
        or is a :class:`PmiClient` (the guest perf core's side of the handler).
        Returns the overflow status the handler saw. The sequences differ by vendor
        (spec amd-and-topdown.md §4.1-4.3), and their exit counts are what a
        virtualization strategy is priced on, so each backend writes its own.
        """
        raise NotImplementedError

    def unmask_pmi(self) -> None:
        """Program the LVTPC for NMI delivery, unmasked, as Linux does."""
        self.vcpu.wrmsr(0x834, 0x400)
