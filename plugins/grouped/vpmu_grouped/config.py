"""The ``[grouped]`` table: all-in-one counters declared field by field.

Everything a config can get wrong is refused here, naming the field: two fields
sharing a bit, a field reaching past its register, an event the backend does not
know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpmu_core.allinone import INDEX_BASE, MAX_INDEX, AllInOneRoom
from vpmu_core.errors import ConfigError
from vpmu_core.events import Catalog, check_names


class FieldConfig(BaseModel):
    """One bit field of an all-in-one counter, counting one event."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(description="an event name the backend knows")
    offset: int = Field(ge=0, le=63, description="lowest bit of the field")
    width: int = Field(ge=1, le=64, description="bits of the field; it wraps inside them")
    name: str | None = Field(None, description="a label; the event name when absent")

    @property
    def label(self) -> str:
        return self.name or self.event


class CounterConfig(BaseModel):
    """A generic all-in-one counter: one register, N fields, N host events in a group."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("grouped", description="a label for reports and errors")
    msr: int = Field(ge=0, lt=1 << 32, description="MSR the guest reads the spliced value at")
    ctrl_msr: int = Field(
        ge=0, lt=1 << 32, description="control MSR: bit 0 OS, bit 1 USR, bit 3 PMI"
    )
    rdpmc: int | None = Field(
        None,
        ge=0,
        lt=1 << 32,
        description="RDPMC ECX that reads it too: one no counter of the vendor uses "
        "(Intel 0x10003-0x1fffffff, AMD 0x10-0xffff or 0x10003-0xffffffff)",
    )
    index: int | None = Field(
        None,
        ge=INDEX_BASE,
        le=MAX_INDEX,
        description="PMC index = its overflow status bit, one the vendor leaves free "
        "(Intel 56-57, 49-53 without topdown; AMD 48-57, 60-63); absent: the next free "
        "one in that order",
    )
    width: int = Field(32, ge=1, le=64, description="register width in bits")
    fields: list[FieldConfig] = Field(min_length=1, max_length=64)


class GroupedConfig(BaseModel):
    """The ``[grouped]`` table."""

    model_config = ConfigDict(extra="forbid")

    counters: list[CounterConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _layout(self) -> GroupedConfig:
        used: dict[int, str] = {}
        msrs: dict[int, str] = {}
        ecxs: dict[int, str] = {}
        for i, c in enumerate(self.counters):
            where = f"grouped.counters[{i}]"
            if c.index is not None:
                if c.index in used:
                    raise ConfigError(f"{where}.index", c.index, f"already used by {used[c.index]}")
                used[c.index] = where
            for key, msr in ((f"{where}.msr", c.msr), (f"{where}.ctrl_msr", c.ctrl_msr)):
                if msr in msrs:
                    raise ConfigError(key, msr, f"already used by {msrs[msr]}")
                msrs[msr] = key
            if c.rdpmc is not None:
                if c.rdpmc in ecxs:
                    raise ConfigError(f"{where}.rdpmc", c.rdpmc, f"already used by {ecxs[c.rdpmc]}")
                ecxs[c.rdpmc] = f"{where}.rdpmc"
            _check_fields(where, c)
        return self

    def indexes(self, room: AllInOneRoom) -> list[int]:
        """Each counter's index on a vendor: its own if free there, else the next free one.

        A ConfigError names the counter, the index or RDPMC ECX the vendor already
        uses and for what, and what is allowed.
        """
        explicit = {c.index for c in self.counters if c.index is not None}
        spare = [i for i in room.indexes if i not in explicit]
        out: list[int] = []
        for i, c in enumerate(self.counters):
            where = f"grouped.counters[{i}]"
            if c.index is None:
                if not spare:
                    raise ConfigError(
                        f"{where}.index",
                        None,
                        f"no free index left for counter {i + 1}; allowed: {room.allowed()}",
                    )
                out.append(spare.pop(0))
            elif c.index in room.indexes:
                out.append(c.index)
            else:
                what = room.taken.get(c.index, f"status bit {c.index} is reserved")
                raise ConfigError(f"{where}.index", c.index, f"{what}; allowed: {room.allowed()}")
            if c.rdpmc is not None:
                taken = room.rdpmc_taken(c.rdpmc)
                if taken is not None:
                    raise ConfigError(
                        f"{where}.rdpmc",
                        c.rdpmc,
                        f"RDPMC {c.rdpmc:#x} reads {taken}; allowed: {room.rdpmc_allowed}",
                    )
        return out


def _check_fields(where: str, c: CounterConfig) -> None:
    taken: list[tuple[int, int, int]] = []
    for j, f in enumerate(c.fields):
        key = f"{where}.fields[{j}]"
        top = f.offset + f.width
        if top > c.width:
            raise ConfigError(
                key,
                f.label,
                f"bits {f.offset}..{top - 1} reach past the {c.width}-bit register",
            )
        for k, lo, hi in taken:
            if f.offset < hi and lo < top:
                raise ConfigError(
                    key,
                    f.label,
                    f"bits {f.offset}..{top - 1} overlap fields[{k}] "
                    f"({c.fields[k].label}, bits {lo}..{hi - 1})",
                )
        taken.append((j, f.offset, top))


def check_against_backend(cfg: Any, backend: Any, catalog: Catalog) -> None:
    """Cross-checks that need the whole config: indexes and RDPMC ECX values the
    backend's architecture leaves free, and each field's event as perf spells it on
    the backend, without qualifier bits (a field counts a host event's events)."""
    grouped: GroupedConfig = cfg.grouped
    grouped.indexes(backend.allinone_room(cfg.pmu))
    for i, c in enumerate(grouped.counters):
        for j, f in enumerate(c.fields):
            where = f"grouped.counters[{i}].fields[{j}].event"
            (spec,) = check_names(catalog, where, [f.event])
            if spec.qual:
                raise ConfigError(where, f.event, "a field counts an event: no cmask/inv/edge")
