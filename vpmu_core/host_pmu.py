"""The host's own PMU: what the hardware under the guests has, apart from what they see.

Why a model of its own: KVM checks a design's requirements against the *host* PMU
and builds the guest's view from it, clamped. The mediated PMU of 6.20 needs an
Intel host of version 4 or later with full-width counter writes (for
GLOBAL_STATUS_SET, spec/intel.md §10) and then shows the guest version 2 at most;
checking the guest's view instead refused exactly the guest KVM exposes. Every
key of ``[host]`` left unset defaults to the guest PMU's own value, so a config
that says nothing about its host runs on a host identical to its guest, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .caps import Caps
from .errors import ConfigError

INTEL = "GenuineIntel"


@dataclass(frozen=True)
class HostPmu:
    """The host PMU of one machine, every value resolved."""

    vendor: str
    version: int
    gp: int
    fixed: int
    gp_width: int
    fixed_width: int
    full_width_writes: bool
    global_status_set: bool


def resolve(host: Any, guest: Caps) -> HostPmu:
    """The host PMU a ``[host]`` table describes; unset keys take the guest's values.

    GLOBAL_STATUS_SET, when not given, follows a given version (Intel v4+, AMD
    PerfMonV2 = version 2) and otherwise the guest's capability.
    """
    version = guest.version if host.version is None else host.version
    status_set = host.global_status_set
    if status_set is None:
        if host.version is None:
            status_set = guest.has_global_status_set
        else:
            status_set = version >= (4 if guest.vendor == INTEL else 2)
    fw = host.full_width_writes
    return HostPmu(
        vendor=guest.vendor,
        version=version,
        gp=guest.gp_counters if host.gp_counters is None else host.gp_counters,
        fixed=guest.fixed_counters if host.fixed_counters is None else host.fixed_counters,
        gp_width=host.gp_width or guest.gp_width,
        fixed_width=host.fixed_width or guest.fixed_width,
        full_width_writes=guest.full_width_writes if fw is None else fw,
        global_status_set=status_set,
    )


def check_guest_fits(host: HostPmu, guest: Caps) -> None:
    """Refuse a guest PMU no KVM would build on this host.

    KVM derives the guest's PMU from the host's (``kvm_init_pmu_capability()`` reads
    ``perf_get_x86_pmu_capability()`` and only ever lowers the version), so a guest
    version above the host's is refused, naming ``host``. Counter counts are not
    checked here: an emulated guest counter is a host perf event, which host perf may
    schedule on fewer counters; a strategy that hands the guest the hardware checks
    its own counts.
    """
    if guest.version > host.version:
        raise ConfigError(
            "host.version",
            host.version,
            f"is below the guest PMU's version {guest.version} (pmu.version): KVM never "
            "exposes a PMU version the host lacks",
        )
