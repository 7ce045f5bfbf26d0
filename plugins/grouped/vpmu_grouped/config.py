"""The ``[grouped]`` table: all-in-one counters declared field by field.

Everything a config can get wrong is refused here, naming the field: two fields
sharing a bit, a field reaching past its register, an event the backend does not
know.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpmu_core.allinone import INDEX_BASE
from vpmu_core.errors import ConfigError
from vpmu_core.events import Catalog, check_names

GENERIC_BASE = 56
"""Generic all-in-one counters default to 56 and up, past Linux's eight metric indices."""
MAX_INDEX = 63
"""A counter's overflow is a status bit at its index, so an index must fit 64 bits."""


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
    rdpmc: int | None = Field(None, ge=0, lt=1 << 32, description="RDPMC ECX that reads it too")
    index: int | None = Field(
        None, ge=INDEX_BASE, le=MAX_INDEX, description="PMC index; 56 + position when absent"
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
        for i, c in enumerate(self.counters):
            where = f"grouped.counters[{i}]"
            idx = c.index if c.index is not None else GENERIC_BASE + i
            if idx > MAX_INDEX:
                raise ConfigError(f"{where}.index", idx, f"must be <= {MAX_INDEX}; give one")
            if idx in used:
                raise ConfigError(f"{where}.index", idx, f"already used by {used[idx]}")
            used[idx] = where
            for key, msr in ((f"{where}.msr", c.msr), (f"{where}.ctrl_msr", c.ctrl_msr)):
                if msr in msrs:
                    raise ConfigError(key, msr, f"already used by {msrs[msr]}")
                msrs[msr] = key
            _check_fields(where, c)
        return self

    def index_of(self, position: int) -> int:
        c = self.counters[position]
        return c.index if c.index is not None else GENERIC_BASE + position


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


def check_against_backend(cfg: Any, catalog: Catalog) -> None:
    """Cross-checks that need the whole config: each field's event, as perf spells it
    on the backend, without qualifier bits (a field counts a host event's events)."""
    grouped: GroupedConfig = cfg.grouped
    for i, c in enumerate(grouped.counters):
        for j, f in enumerate(c.fields):
            where = f"grouped.counters[{i}].fields[{j}].event"
            (spec,) = check_names(catalog, where, [f.event])
            if spec.qual:
                raise ConfigError(where, f.event, "a field counts an event: no cmask/inv/edge")
