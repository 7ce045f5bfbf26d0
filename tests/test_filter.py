"""KVM_SET_PMU_EVENT_FILTER semantics, case by case (spec/intel.md §9)."""

from __future__ import annotations

import pytest

from vpmu_core import FilterError, Machine
from vpmu_core.filter import EXCLUDE, encode_masked_entry

CYCLES = 0x3C
INS = 0xC0


def machine() -> Machine:
    return Machine.from_dict({"pmu": {"backend": "intel", "version": 2}})


def program(m: Machine, *sels: int) -> None:
    cpu = m.vcpus[0]
    for i, sel in enumerate(sels):
        cpu.wrmsr(0x186 + i, 0x430000 | sel)


def counts(m: Machine, event: tuple[int, int], n: int = 10) -> list[int]:
    cpu = m.vcpus[0]
    before = [cpu.counters[i].value for i in range(4)]
    cpu.retire(event, n)
    return [cpu.counters[i].value - before[i] for i in range(4)]


def test_no_filter_allows_everything() -> None:
    m = machine()
    program(m, 0x013C)
    assert counts(m, (0x3C, 0x01)) == [10, 0, 0, 0]


def test_deny_list_stops_listed_events_only() -> None:
    m = machine()
    program(m, 0x3C, 0xC4)
    m.set_event_filter("deny", [0x3C])
    assert counts(m, (0x3C, 0)) == [0, 0, 0, 0]
    assert counts(m, (0xC4, 0)) == [0, 10, 0, 0]


def test_allow_list_lets_only_listed_events() -> None:
    m = machine()
    program(m, 0x3C, 0xC4)
    m.set_event_filter("allow", [0xC4])
    assert counts(m, (0x3C, 0)) == [0, 0, 0, 0]
    assert counts(m, (0xC4, 0)) == [0, 10, 0, 0]


def test_plain_entries_match_event_and_umask_exactly() -> None:
    m = machine()
    program(m, 0x013C, 0x003C)
    m.set_event_filter("deny", [0x013C])
    assert counts(m, (0x3C, 0x01)) == [0, 0, 0, 0]
    assert counts(m, (0x3C, 0x00)) == [0, 10, 0, 0]


def test_impossible_plain_entries_are_dropped_silently() -> None:
    m = machine()
    flt = m.set_event_filter("deny", [(1 << 64) - 1, 0x1_0000_003C, 0x3C])
    assert flt.nevents == 1  # only 0x3C survives
    program(m, 0x3C)
    assert counts(m, (0x3C, 0)) == [0, 0, 0, 0]
    # a filter whose only entry was dropped denies nothing
    m.set_event_filter("deny", [(1 << 64) - 1])
    assert counts(m, (0x3C, 0)) == [10, 0, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "errno"),
    [
        ({"action": "maybe", "events": []}, "EINVAL"),
        ({"action": "deny", "events": [0] * 301}, "E2BIG"),
        ({"action": "deny", "events": [], "flags": 2}, "EINVAL"),
        ({"action": "deny", "events": [(1 << 64) - 1], "masked": True}, "EINVAL"),
        ({"action": "deny", "events": [1 << 32], "masked": True}, "EINVAL"),  # Intel: no 35:32
        ({"action": "deny", "events": [1 << 20], "masked": True}, "EINVAL"),
    ],
)
def test_rejected_filters(kwargs: dict[str, object], errno: str) -> None:
    m = machine()
    with pytest.raises(FilterError) as exc:
        m.set_event_filter(**kwargs)  # type: ignore[arg-type]
    assert exc.value.errno == errno


def test_300_events_is_the_limit_not_beyond() -> None:
    m = machine()
    assert m.set_event_filter("deny", [0x3C] * 300).nevents == 300


def test_masked_entry_of_all_ones_fields_is_valid() -> None:
    m = machine()
    entry = encode_masked_entry(0xFF, 0xFF, 0xFF, True)
    assert entry == 0xFF | (0xFF << 56) | (0xFF << 8) | EXCLUDE
    m.set_event_filter("deny", [entry], masked=True)


def test_masked_entries_match_umask_under_mask() -> None:
    m = machine()
    program(m, 0x013C, 0x023C, 0x033C)
    # include umasks whose bit 0 is set: 0x01 and 0x03, not 0x02
    m.set_event_filter("deny", [encode_masked_entry(0x3C, 0x01, 0x01, False)], masked=True)
    assert counts(m, (0x3C, 0x01)) == [0, 0, 0, 0]
    assert counts(m, (0x3C, 0x02)) == [0, 10, 0, 0]
    assert counts(m, (0x3C, 0x03)) == [0, 0, 0, 0]


def test_exclude_entries_carve_out_of_includes() -> None:
    m = machine()
    program(m, 0x013C, 0x033C)
    m.set_event_filter(
        "allow",
        [
            encode_masked_entry(0x3C, 0x00, 0x00, False),  # every umask of 0x3C
            encode_masked_entry(0x3C, 0xFF, 0x03, True),  # except 0x03
        ],
        masked=True,
    )
    assert counts(m, (0x3C, 0x01)) == [10, 0, 0, 0]
    assert counts(m, (0x3C, 0x03)) == [0, 0, 0, 0]


def test_fixed_counters_follow_the_bitmap_and_never_the_events() -> None:
    m = machine()
    cpu = m.vcpus[0]
    cpu.wrmsr(0x38F, 0x7_0000_00FF)
    cpu.wrmsr(0x38D, 0x333)
    m.set_event_filter("deny", [INS, CYCLES], fixed_counter_bitmap=0b100)
    cpu.retire("instructions", 10)
    cpu.retire("cycles", 10)
    cpu.retire("ref-cycles", 10)
    # fixed0 also counted the WRMSR that enabled it
    assert [cpu.counters[32 + i].value for i in range(3)] == [11, 10, 0]
    m.set_event_filter("allow", [INS], fixed_counter_bitmap=0b010)
    cpu.retire("instructions", 10)
    cpu.retire("cycles", 10)
    assert [cpu.counters[32 + i].value for i in range(2)] == [11, 20]


def test_bitmap_bits_of_missing_counters_are_accepted() -> None:
    machine().set_event_filter("allow", [], fixed_counter_bitmap=0xFFFF_FFFF)


def test_denied_counter_msrs_behave_normally_and_filter_replacement_applies_live() -> None:
    m = machine()
    program(m, 0x3C)
    cpu = m.vcpus[0]
    m.set_event_filter("deny", [0x3C])
    cpu.wrmsr(0x4C1, 1234)
    assert cpu.rdmsr(0xC1) == 1234 and cpu.rdmsr(0x186) == 0x43003C
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(0xC1) == 1234
    m.set_event_filter("deny", [0xC4])  # replaces the previous filter
    cpu.retire("cycles", 10)
    assert cpu.rdmsr(0xC1) == 1244


def test_filter_from_config() -> None:
    m = Machine.from_dict(
        {"pmu": {"backend": "intel"}, "filter": {"action": "deny", "events": [0x3C]}}
    )
    program(m, 0x3C)
    assert counts(m, (0x3C, 0)) == [0, 0, 0, 0]
