"""The hooks of vpmu.

There are two kinds, and the split is the whole performance story of vpmu:

* **Registration hooks** (``vpmu_register_*``) are implemented by plugin *modules*,
  the objects the ``vpmu`` entry-point group names. Each is called once when a
  :class:`~vpmu_core.plugins.PluginManager` is built.
* **Machine hooks** are implemented by the *components* a config selects (its
  backend, its strategy, its extensions, and vpmu's own local APIC). A
  :class:`~vpmu_core.machine.Machine` registers exactly those components into a
  plugin manager of its own and calls these hooks while it builds each vCPU. They
  return the objects the vCPU then binds.

No hook is ever called on the hot path. A guest WRMSR is a dict lookup plus a
bound handler; a pluggy call costs 20-40 times that (``benchmarks/msr_throughput.py``
prints the ratio). So a hook may *decide* (which handler, which allocator, which
PMI path) but never *do* per-access work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .counters import Pmc
    from .msr import MsrHandler
    from .port import CounterAllocator, PmiPath, VcpuPort

hookspec = pluggy.HookspecMarker("vpmu")
hookimpl = pluggy.HookimplMarker("vpmu")


# --------------------------------------------------------------------------------------
# Registration hooks: called once per plugin manager, on plugin modules.
# --------------------------------------------------------------------------------------


@hookspec
def vpmu_register_backends(register: Callable[[type[Any]], None]) -> None:
    """Register vendor backends by calling ``register(BackendClass)``.

    Called once when a plugin manager loads its plugins. A backend class has a
    ``name`` (what ``[pmu] backend = ...`` selects), a pydantic ``Config`` model for
    its ``[pmu]`` table whose ``backend`` field is ``Literal[name]``, and is
    instantiated once per machine as ``BackendClass(config, machine)``; the instance
    then takes part in the machine hooks below. Two plugins registering one name is
    an error naming both.
    """


@hookspec
def vpmu_register_strategies(register: Callable[[type[Any]], None]) -> None:
    """Register virtualization strategies by calling ``register(StrategyClass)``.

    Same contract as :func:`vpmu_register_backends`, for the ``[strategy]`` table
    (discriminator ``name``). See :class:`vpmu_core.strategy.Strategy`.
    """


@hookspec
def vpmu_register_workloads(register: Callable[[type[Any]], None]) -> None:
    """Register guest workload drivers by calling ``register(WorkloadClass)``.

    Same contract, for the ``[workload]`` table (discriminator ``kind``). See
    :class:`vpmu_core.workloads.base.Workload`.
    """


@hookspec
def vpmu_register_extensions(register: Callable[[type[Any]], None]) -> None:
    """Register extensions by calling ``register(ExtensionClass)``.

    An extension is selected by ``extensions = ["name"]`` at the top of a config and
    configured by a top-level table of its own name. It joins the machine hooks like
    a backend does, so it can add counters, MSRs and CPUID bits to any backend.
    """


@hookspec
def vpmu_register_guest_drivers(register: Callable[[type[Any]], None]) -> None:
    """Register guest perf drivers by calling ``register(DriverClass)``.

    A :class:`~vpmu_core.guest.GuestDriver` subclass with a ``name`` and the CPUID
    vendor strings (leaf 0) it serves in ``vendors``. A guest runs the driver its
    CPUID vendor selects, whichever backend built the vCPU (Linux's
    ``init_hw_perf_events``); two drivers claiming one vendor is an error naming both.
    """


# --------------------------------------------------------------------------------------
# Machine hooks: called on the components a config selected, while a vCPU is built.
# The hooks run in MACHINE_HOOK_ORDER; each on the components as pluggy calls them,
# the last registered first (the strategy, the extensions in reverse config order,
# the backend, vpmu's local APIC); tests/test_hook_order.py holds the code to it.
# --------------------------------------------------------------------------------------

MACHINE_HOOK_ORDER = (
    "vpmu_vcpu_counters",
    "vpmu_vcpu_msr_handlers",
    "vpmu_vcpu_cpuid",
    "vpmu_counter_allocator",
    "vpmu_pmi_path",
    "vpmu_vcpu_ready",
)


@hookspec
def vpmu_vcpu_counters(vcpu: VcpuPort) -> list[Pmc]:
    """Return the PMCs this component contributes to ``vcpu``.

    Called once per vCPU, before the MSR handlers. All results are merged into one
    index space (GP 0-31, fixed 32+); two components claiming one index is an error
    naming both.
    """
    raise NotImplementedError


@hookspec
def vpmu_vcpu_msr_handlers(vcpu: VcpuPort) -> list[MsrHandler]:
    """Return the MSR handlers this component contributes to ``vcpu``.

    Called once per vCPU. The core merges every result into one dispatch table and
    refuses two components claiming one MSR, naming both. An MSR nobody claims
    raises #GP in the guest. The handlers are then bound: the guest's WRMSR calls
    them directly, so they must be plain callables doing only the access itself.
    """
    raise NotImplementedError


@hookspec
def vpmu_vcpu_cpuid(vcpu: VcpuPort) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """Return the CPUID leaves this component defines, keyed by ``(leaf, subleaf)``.

    Results are OR-ed together, so an extension can set feature bits in a leaf the
    backend owns.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def vpmu_counter_allocator(vcpu: VcpuPort) -> CounterAllocator | None:
    """Return the object that allocates and releases host resources for ``vcpu``'s PMCs.

    firstresult: the strategy answers. Called once per vCPU; the vCPU calls the
    allocator's ``reprogram(pmc)`` whenever a counter's control changed, before the
    next VM entry (KVM's ``KVM_REQ_PMU``), and ``release(pmc)`` when it lets a
    counter go.
    """


@hookspec(firstresult=True)
def vpmu_pmi_path(vcpu: VcpuPort) -> PmiPath | None:
    """Return how a PMI travels from a counter overflow to ``vcpu``'s LVTPC.

    firstresult: the strategy answers. Called once per vCPU; the returned object's
    ``deliver()`` is bound and called at the next VM entry after an overflow with
    the interrupt bit set.
    """


@hookspec
def vpmu_vcpu_ready(vcpu: VcpuPort) -> None:
    """Called once a vCPU is fully bound, with its dispatch table in place.

    The wrap step: a component that must see accesses to an MSR another component
    owns (an access tracer, a strategy that follows counter writes) wraps the row
    here with ``vcpu.wrap_msr(msr, wrap)``, with plain callables, never a pluggy
    call. The vCPU's counters are reprogrammed once all components returned.
    """


@hookspec
def vpmu_save_state(vcpu: VcpuPort) -> dict[str, Any] | None:
    """Return this component's part of ``vcpu``'s state as a JSON-able dict.

    Called by ``Vcpu.snapshot()``; keyed in the snapshot by the component's name.
    Return None if the component keeps no per-vCPU state.
    """


@hookspec
def vpmu_restore_state(vcpu: VcpuPort, states: dict[str, dict[str, Any]]) -> None:
    """Restore this component's part of ``vcpu``'s state from ``states[name]``.

    Called by ``Vcpu.restore()`` after the snapshot was checked to fit this machine.
    Raise :class:`~vpmu_core.errors.SnapshotError` if the part does not fit.
    """


@hookspec
def vpmu_register_mechanisms(register: Callable[[Any], None]) -> None:
    """Declare the ledger keys a plugin counts by calling ``register(Mechanism(...))``.

    Called once when a plugin manager loads its plugins, like the other
    ``vpmu_register_*`` hooks. Each :class:`~vpmu_core.mechanisms.Mechanism` names a
    ledger category and key, one line of meaning, and the cost that prices one
    count: an existing cost-table field, or a new cost name with a
    :class:`~vpmu_core.mechanisms.Cost` default (value, range, source). Why a
    declaration: a ledger key nobody declared is an error at its first count,
    never a silent 0. A new cost is overridable in a config's ``[costs]`` table
    within its range. Two plugins declaring one key, or one new cost, is an error
    naming both.
    """
