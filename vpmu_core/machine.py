"""A machine: the selected components, the vCPUs they built, and one ledger.

The machine owns a pluggy manager of its own holding only the components its
config selected (vpmu's local APIC, the backend, the extensions, the strategy),
so the machine hooks reach exactly the participants of this machine and a sweep
can hold many machines side by side.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from .apic import LVTPC_MSR
from .config import load_dict, load_toml
from .errors import PluginError
from .filter import EventFilter, build_filter
from .guest import GuestDriver, cpuid_vendor
from .host import Host
from .host_pmu import resolve as resolve_host_pmu
from .ledger import Ledger
from .msr import LVTPC, MsrHandler
from .plugins import PluginManager, call_each, default_manager, new_pluggy_manager
from .port import CounterAllocator
from .strategy import DirectPmiPath
from .vcpu import Vcpu


class LocalApic:
    """vpmu's own component: the LVTPC register of every vCPU."""

    name = "apic"

    def vpmu_vcpu_msr_handlers(self, vcpu: Vcpu) -> list[MsrHandler]:
        lvt = vcpu.lvtpc
        return [MsrHandler(LVTPC_MSR, "X2APIC_LVTPC", LVTPC, lvt.read, lvt.write)]


class NullAllocator(CounterAllocator):
    """Backs nothing: the architectural model with no host underneath."""


class Machine:
    """A configured virtual machine: ``Machine.from_toml(path)`` or ``Machine.from_dict({...})``."""

    def __init__(self, config: Any, plugins: PluginManager | None = None) -> None:
        from .hookspecs import hookimpl

        self.config = config
        self.plugins = plugins or default_manager()
        self.name = config.machine.name
        self.ledger = Ledger(self.plugins.prices)
        reg = self.plugins.registry
        self.backend = reg["backends"][config.pmu.backend](config.pmu, self)
        caps = self.backend.caps()
        self.host = Host(config.host, resolve_host_pmu(config.host, caps), self.ledger)
        self.extensions = {
            n: reg["extensions"][n](getattr(config, n), self) for n in config.extensions
        }
        self.strategy = reg["strategies"][config.strategy.name](config.strategy, self)
        self.components = new_pluggy_manager()
        self.components.register(_hookimpls(LocalApic(), hookimpl), name="apic")
        self.components.register(self.backend, name=self.backend.name)
        for name, ext in self.extensions.items():
            self.components.register(ext, name=name)
        self.components.register(self.strategy, name=f"strategy:{self.strategy.name}")
        self.host.listener = self.strategy
        self.event_filter: EventFilter | None = None
        if config.filter is not None:
            f = config.filter
            self.event_filter = self._build_filter(
                f.action, f.events, f.fixed_counter_bitmap, f.masked, None
            )
        self.vcpus: list[Vcpu] = [self._build_vcpu(i) for i in range(config.machine.vcpus)]
        # vCPUs whose run, teardown and finish another machine simulated and this
        # ledger received as a delta (a shard, a symmetry class): settled already.
        self.settled: set[int] = set()
        # A hold on the host's hardware refcount standing for the events of vCPUs that
        # ran as units and gave all of them back at their teardown: dropped at ours.
        self.units_hold = False
        logger.debug(
            "machine {} built: {} vCPUs, backend {}, strategy {}",
            self.name,
            len(self.vcpus),
            self.backend.name,
            self.strategy.name,
        )

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_dict(cls, data: dict[str, Any], plugins: PluginManager | None = None) -> Machine:
        pm = plugins or default_manager()
        return cls(load_dict(data, pm), pm)

    @classmethod
    def from_toml(cls, path: str | Path, plugins: PluginManager | None = None) -> Machine:
        pm = plugins or default_manager()
        return cls(load_toml(path, pm), pm)

    def _build_vcpu(self, index: int) -> Vcpu:
        v = Vcpu(self, index)
        self.host.place(v)
        owners: dict[int, str] = {}
        for name, pmcs in call_each(self.components, "vpmu_vcpu_counters", vcpu=v):
            for pmc in pmcs or []:
                if pmc.idx in owners:
                    raise PluginError(
                        f"counter index {pmc.idx} is claimed by both {owners[pmc.idx]!r} "
                        f"and {name!r}"
                    )
                owners[pmc.idx] = name
                pmc.owner = name
                v.counters[pmc.idx] = pmc
        if not hasattr(v, "pmu"):
            raise PluginError(f"backend {self.backend.name!r} did not set vcpu.pmu")
        v.counters = dict(sorted(v.counters.items()))
        v.lvtpc.masks_on_pmi = v.pmu.caps.lvtpc_masks_on_pmi
        msr_owner: dict[int, str] = {}
        for name, handlers in call_each(self.components, "vpmu_vcpu_msr_handlers", vcpu=v):
            for h in handlers or []:
                if h.msr in msr_owner:
                    raise PluginError(
                        f"MSR {h.msr:#x} is claimed by both {msr_owner[h.msr]!r} and {name!r}"
                    )
                msr_owner[h.msr] = name
                v.msr_table[h.msr] = h
        for _, leaves in call_each(self.components, "vpmu_vcpu_cpuid", vcpu=v):
            for key, regs in (leaves or {}).items():
                old = v.cpuid_leaves.get(key, (0, 0, 0, 0))
                v.cpuid_leaves[key] = (
                    old[0] | regs[0],
                    old[1] | regs[1],
                    old[2] | regs[2],
                    old[3] | regs[3],
                )
        v.allocator = self._first("vpmu_counter_allocator", v) or NullAllocator()
        v.pmi_path = self._first("vpmu_pmi_path", v) or DirectPmiPath(v)
        v.bind()
        for _ in call_each(self.components, "vpmu_vcpu_ready", vcpu=v):
            pass
        v.request_reprogram_all()
        v.sync()
        return v

    def _first(self, hook: str, vcpu: Vcpu) -> Any:
        for _, result in call_each(self.components, hook, vcpu=vcpu):
            if result is not None:
                return result
        return None

    def guest_driver(self, vcpu: Vcpu) -> GuestDriver:
        """The guest perf driver of ``vcpu``: the one its CPUID vendor selects, one per vCPU.

        One per vCPU because the driver keeps the guest's bookkeeping (which counters
        it made active, which a disable-all stopped); two drivers of one vCPU would
        disagree about it.
        """
        drv = vcpu.ext.get("guest-driver")
        if drv is None:
            cls = self.plugins.guest_driver_class(cpuid_vendor(vcpu))
            drv = vcpu.ext["guest-driver"] = cls(vcpu)
            drv.use_kernel(self.config.guest.version)
        assert isinstance(drv, GuestDriver)
        return drv

    def teardown(self) -> None:
        """Destroy the VM: the strategy gives back what it took from the host."""
        for v in self.vcpus:
            v.sync()
        with self._unsettled():
            self.strategy.teardown()
        if self.units_hold:
            self.units_hold = False
            self.host.put_hardware()

    def finish(self) -> None:
        """Settle the strategy's lazily kept counts (before the ledger is priced)."""
        with self._unsettled():
            self.strategy.finish()

    @contextmanager
    def _unsettled(self) -> Iterator[None]:
        """Strategies walk ``machine.vcpus`` at teardown and finish: show them only the
        vCPUs whose share is not in the ledger yet, so no vCPU is settled twice."""
        if not self.settled:
            yield
            return
        every = self.vcpus
        self.vcpus = [v for v in every if v.index not in self.settled]
        try:
            yield
        finally:
            self.vcpus = every

    # ------------------------------------------------------------- event filter
    def _build_filter(
        self,
        action: str,
        events: Sequence[int],
        fixed_counter_bitmap: int,
        masked: bool,
        flags: int | None,
    ) -> EventFilter:
        return build_filter(
            action=action,
            events=events,
            fixed_counter_bitmap=fixed_counter_bitmap,
            masked=masked,
            flags=flags,
            event_select_mask=self.backend.event_select_mask(),
        )

    def set_event_filter(
        self,
        action: str,
        events: Sequence[int] = (),
        fixed_counter_bitmap: int = 0,
        masked: bool = False,
        *,
        flags: int | None = None,
    ) -> EventFilter:
        """Install a filter as KVM_SET_PMU_EVENT_FILTER does; it applies to running counters."""
        flt = self._build_filter(action, events, fixed_counter_bitmap, masked, flags)
        self._install_filter(flt)
        return flt

    def clear_event_filter(self) -> None:
        self._install_filter(None)

    def _install_filter(self, flt: EventFilter | None) -> None:
        self.event_filter = flt
        self.ledger.events["filter_update"] += 1
        for v in self.vcpus:
            v.request_reprogram_all()
            v.sync()

    def __repr__(self) -> str:
        return (
            f"<Machine {self.name}: {len(self.vcpus)} vCPUs, {self.backend.name}, "
            f"{self.strategy.name}>"
        )


def _hookimpls(obj: Any, marker: Any) -> Any:
    """Mark a plain component's ``vpmu_*`` methods as hook implementations."""
    for attr in dir(type(obj)):
        if attr.startswith("vpmu_"):
            marker(getattr(type(obj), attr))
    return obj
