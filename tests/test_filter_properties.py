"""KVM_SET_PMU_EVENT_FILTER's decision rule (spec/intel.md §9) for every filter and event."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vpmu_core.counters import FIXED_BASE, Pmc
from vpmu_core.filter import build_filter, encode_masked_entry

EVENTS = st.sampled_from([0x3C, 0xC0, 0x2E])
# Few events and umasks, and a match that some umask can meet: random bytes would
# almost never match, and the rule would go untested.
UMASKS = st.sampled_from([0x00, 0x01, 0x03, 0x41, 0x4F])
ENTRY = st.builds(
    lambda event, mask, umask, exclude: (event, mask, umask & mask, exclude),
    EVENTS,
    st.sampled_from([0x00, 0x01, 0x0F, 0xFF]),
    UMASKS,
    st.booleans(),
)
ACTION = st.sampled_from(["allow", "deny"])


def gp(event: int, umask: int) -> Pmc:
    pmc = Pmc(0, "gp", 48)
    pmc.key = (event, umask)
    return pmc


@given(entries=st.lists(ENTRY, max_size=6), event=EVENTS, umask=UMASKS, action=ACTION)
def test_masked_filter_allows_by_include_and_exclude(
    entries: list[tuple[int, int, int, bool]], event: int, umask: int, action: str
) -> None:
    """In the filter iff some include entry matches and no exclude entry does, where an
    entry matches on the same event select and ``umask & mask == match``."""
    words = [encode_masked_entry(e, mask, match, ex) for e, mask, match, ex in entries]
    f = build_filter(action=action, events=words, masked=True)

    def hit(exclude: bool) -> bool:
        return any(
            e == event and umask & mask == match for e, mask, match, ex in entries if ex == exclude
        )

    in_filter = hit(False) and not hit(True)
    assert f.matches(event, umask) == in_filter
    assert f.allows(gp(event, umask)) == (in_filter if action == "allow" else not in_filter)


@given(
    words=st.lists(
        st.one_of(
            st.builds(lambda e, u: u << 8 | e, EVENTS, UMASKS),
            st.integers(0, (1 << 64) - 1),
        ),
        max_size=8,
    ),
    event=EVENTS,
    umask=UMASKS,
    action=ACTION,
)
def test_plain_filter_drops_impossible_entries_and_matches_exactly(
    words: list[int], event: int, umask: int, action: str
) -> None:
    """A plain entry with a bit outside event select and umask is dropped silently; the
    rest match on event select and the whole umask."""
    f = build_filter(action=action, events=words)
    kept = [w for w in words if not w >> 16]
    assert f.nevents == len(kept)
    in_filter = (umask << 8 | event) in kept
    assert f.allows(gp(event, umask)) == (in_filter if action == "allow" else not in_filter)


@given(
    bitmap=st.integers(0, (1 << 32) - 1),
    i=st.integers(0, 3),
    action=ACTION,
    words=st.lists(st.integers(0, 0xFFFF), max_size=4),
)
def test_fixed_counters_follow_the_bitmap_alone(
    bitmap: int, i: int, action: str, words: list[int]
) -> None:
    f = build_filter(action=action, events=words, fixed_counter_bitmap=bitmap)
    pmc = Pmc(FIXED_BASE + i, "fixed", 48, key=(0xC0, 0))
    bit = bool(bitmap >> i & 1)
    assert f.allows(pmc) == (bit if action == "allow" else not bit)
