"""Where an all-in-one counter may sit on AMD: status bits and RDPMC ECX no one uses.

PerfCntrGlobalStatus (spec/amd-and-topdown.md §1.3): bit n is counter n (up to 16 on
bare PerfMonV2 hardware), 58 LBR stack frozen, 59 counters frozen. RDPMC (§1.1): ECX is
the counter index, 0-5 the core counters (PerfMonV2 up to 15), NB/DF counters from 6,
L3 counters from 10; KVM's VMware backdoor answers 0x10000-0x10002 on any vendor.
"""

from __future__ import annotations

from vpmu_core.allinone import AllInOneRoom, backdoor_rdpmc

STATUS_MEANINGS = {58: "LBR stack frozen", 59: "counters frozen"}
FREE_ORDER = (56, 57, *range(48, 56), *range(60, 64))
RDPMC_COUNTERS = 16


def rdpmc_taken(ecx: int) -> str | None:
    """What an RDPMC ECX already reads on AMD, or None if nothing does."""
    if ecx < RDPMC_COUNTERS:
        return f"counter {ecx}'s ECX (core 0-5 or PerfMonV2 up to 15, NB/DF from 6, L3 from 10)"
    return backdoor_rdpmc(ecx)


ROOM = AllInOneRoom(
    indexes=FREE_ORDER,
    taken={i: f"PerfCntrGlobalStatus bit {i} is {m} on AMD" for i, m in STATUS_MEANINGS.items()},
    rdpmc_taken=rdpmc_taken,
    rdpmc_allowed="0x10-0xffff or 0x10003-0xffffffff",
)
