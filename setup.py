"""Build the compiled engine with mypyc when a C compiler is present.

Why mypyc: it compiles the *same* type-annotated Python source (mypy strict
already checks it) into C extension modules, so there is one source of truth
and no logic written twice -- unlike Cython (a second dialect and .pxd files),
a hand-written C core, or PyPy (a different interpreter for the whole stack,
pydantic-core and all). Without a compiler, or with ``VPMU_PURE=1`` at install
time, the package installs as plain Python and behaves identically
(tests/test_compiled.py runs both and compares their JSON byte for byte).

Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

from setuptools import setup

# The hot path: the vCPU and its counters, the vendor register semantics, the guest drivers, the
# guest perf core and its loop, the strategies' per-vCPU parts (host perf events,
# the mediated PMU's put+load) and the ground truth the engine steps by. No
# pydantic model lives in these modules (mypyc compiles plain classes; config
# models stay interpreted).
COMPILED = [
    "vpmu_core/apic.py",
    "vpmu_core/pmis.py",
    "vpmu_core/vcpu.py",
    "vpmu_core/counters.py",
    "vpmu_core/matching.py",
    "vpmu_core/guest.py",
    "vpmu_core/guest_perf/core.py",
    "vpmu_core/guest_perf/loop.py",
    "vpmu_core/guest_perf/event.py",
    "vpmu_core/guest_perf/schedule.py",
    "vpmu_core/guest_perf/throttle.py",
    "vpmu_core/guest_perf/meter.py",
    "vpmu_core/strategies/mediated_switch.py",
    "vpmu_core/strategies/perf_events.py",
    "vpmu_core/workloads/truth.py",
    "vpmu_core/workloads/qualified.py",
    "plugins/intel/vpmu_intel/pmu.py",
    "plugins/intel/vpmu_intel/counter_writes.py",
    "plugins/intel/vpmu_intel/guest.py",
    "plugins/amd/vpmu_amd/pmu.py",
    "plugins/amd/vpmu_amd/guest.py",
]


def _compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def ext_modules() -> list[object]:
    if os.environ.get("VPMU_PURE", "") not in ("", "0"):
        return []
    if not _compiler():
        print("vpmu: no C compiler found, installing the pure-Python engine", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", debug_level="0", group_name="vpmu_core._engine"))


setup(ext_modules=ext_modules())
