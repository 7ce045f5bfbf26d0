"""Snapshots: a vCPU's whole PMU state as a versioned, JSON round-tripping model.

A snapshot carries the *shape* of the PMU it came from (backend, capabilities,
extensions, counter indices); restoring into a machine of another shape is
refused with the first difference named, because silently truncating a counter
or dropping a register is the one thing a migration must never do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SnapshotError
from .plugins import call_each

if TYPE_CHECKING:
    from .port import VcpuPort

FORMAT = "vpmu-vcpu-snapshot"
VERSION = 1


class VcpuSnapshot(BaseModel):
    """Version 1 of the snapshot format."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["vpmu-vcpu-snapshot"] = "vpmu-vcpu-snapshot"
    version: Literal[1] = 1
    backend: str
    extensions: list[str]
    shape: dict[str, Any]
    cpl: int
    cr4_pce: bool
    lvtpc: int
    pmi_pending: bool
    counters: dict[str, dict[str, Any]]
    components: dict[str, dict[str, Any]]


def take_snapshot(vcpu: VcpuPort) -> VcpuSnapshot:
    vcpu.sync()
    components: dict[str, dict[str, Any]] = {}
    for name, state in call_each(vcpu.machine.components, "vpmu_save_state", vcpu=vcpu):
        if state is not None:
            components[name] = state
    return VcpuSnapshot(
        backend=vcpu.machine.backend.name,
        extensions=list(vcpu.machine.extensions),
        shape=vcpu.pmu.shape(),
        cpl=vcpu.cpl,
        cr4_pce=vcpu.cr4_pce,
        lvtpc=vcpu.lvtpc.value,
        pmi_pending=vcpu.pmi_pending,
        counters={str(i): pmc.save() for i, pmc in vcpu.counters.items()},
        components=components,
    )


def _coerce(state: VcpuSnapshot | dict[str, Any] | str) -> VcpuSnapshot:
    try:
        if isinstance(state, VcpuSnapshot):
            return state
        if isinstance(state, str):
            return VcpuSnapshot.model_validate_json(state)
        return VcpuSnapshot.model_validate(state)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise SnapshotError(f"snapshot is malformed at {where}: {err['msg']}") from None


def _listed(indexes: set[str]) -> str:
    """Counter indexes in numeric order ('4' before '32'), a malformed key last."""
    keys = sorted(indexes, key=lambda k: (0, int(k), "") if k.isdecimal() else (1, 0, k))
    return f"[{', '.join(keys)}]"


def restore_snapshot(vcpu: VcpuPort, state: VcpuSnapshot | dict[str, Any] | str) -> None:
    snap = _coerce(state)
    machine = vcpu.machine
    if snap.backend != machine.backend.name:
        raise SnapshotError(
            f"snapshot is for backend {snap.backend!r}; this machine runs {machine.backend.name!r}"
        )
    if snap.extensions != list(machine.extensions):
        raise SnapshotError(
            f"snapshot has extensions {snap.extensions}; "
            f"this machine has {list(machine.extensions)}"
        )
    shape = vcpu.pmu.shape()
    for key in sorted(set(shape) | set(snap.shape)):
        if shape.get(key) != snap.shape.get(key):
            raise SnapshotError(
                f"snapshot PMU differs in {key}: {snap.shape.get(key)!r} in the snapshot, "
                f"{shape.get(key)!r} in this machine"
            )
    # The counters are keyed by PMC index, so this also tells apart PMUs with equal
    # counter counts and different indexes (Intel v6 bitmaps): a shape of counts cannot.
    theirs, here = set(snap.counters), {str(i) for i in vcpu.counters}
    if theirs != here:
        raise SnapshotError(
            f"snapshot counter indexes {_listed(theirs)} differ from this machine's "
            f"{_listed(here)}: only in the snapshot {_listed(theirs - here)}, "
            f"only here {_listed(here - theirs)}"
        )
    try:
        for i, pmc in vcpu.counters.items():
            pmc.load(snap.counters[str(i)])
        for _ in call_each(
            machine.components, "vpmu_restore_state", vcpu=vcpu, states=snap.components
        ):
            pass
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"snapshot state does not fit: {type(exc).__name__}: {exc}") from None
    vcpu.cpl = snap.cpl
    vcpu.cr4_pce = snap.cr4_pce
    vcpu.lvtpc.value = snap.lvtpc
    vcpu.request_reprogram_all()
    vcpu.sync()
    if snap.pmi_pending:
        vcpu.raise_pmi()
