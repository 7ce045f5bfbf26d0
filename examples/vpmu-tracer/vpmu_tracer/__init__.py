"""vpmu-tracer: write every guest PMU access, and the strategy's verdict on it, to a file.

Select it with ``extensions = ["tracer"]`` and configure it in a ``[tracer]``
table. The file is in the line format of ``docs/trace-format.md`` (one access a
line, ``wrmsr 0x186 0x4300c0 # exit``), which vpmu's ``trace`` workload replays.

How it stays off the hot path: at ``vpmu_vcpu_ready`` it replaces each entry of
``vcpu.msr_table`` with a copy whose read and write are plain closures (write the
line, call the original handler) and asks the vCPU to re-bind that MSR; RDPMC
readers are wrapped the same way. The verdict is known then, from the strategy's
``intercept``/``rdpmc_exits``, so each closure carries its verdict as a constant.
No pluggy call happens per access: a hook costs about 23 times a bound-table
dispatch (``benchmarks/msr_throughput.py``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import IO, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

import vpmu_core as vpmu

__version__ = "0.1.0"


class TracerConfig(BaseModel):
    """The ``[tracer]`` table."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        "vpmu-trace.txt",
        description="the trace file; '{vcpu}' in it is replaced by the vCPU index "
        "(required when the machine has more than one vCPU)",
    )


def verdict(reason: str | None) -> str:
    """The trace's verdict word: the access exits to the hypervisor or passes through."""
    return "pass" if reason is None else "exit"


class Tracer:
    """The extension component: one trace file per vCPU, opened when the vCPU is ready."""

    name: ClassVar[str] = "tracer"
    Config: ClassVar[type[TracerConfig]] = TracerConfig

    def __init__(self, config: TracerConfig, machine: vpmu.Machine) -> None:
        self.config = config
        self.machine = machine
        self.files: list[IO[str]] = []

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse one file for several vCPUs: their lines would interleave."""
        tracer = getattr(config, cls.name)
        path = tracer.path if tracer is not None else TracerConfig().path
        if config.machine.vcpus > 1 and "{vcpu}" not in path:
            raise vpmu.ConfigError(
                "tracer.path", path, "must contain '{vcpu}' when the machine has several vCPUs"
            )

    @classmethod
    def conformance_configs(cls) -> dict[str, dict[str, Any]]:
        """The conformance suite with the tracer loaded: tracing must change nothing."""
        quiet = {"path": os.devnull}
        return {
            "intel": {
                "pmu": {"backend": "intel", "version": 2},
                "extensions": ["tracer"],
                "tracer": quiet,
            },
            "amd": {
                "pmu": {"backend": "amd", "generation": "perfmon-v2"},
                "extensions": ["tracer"],
                "tracer": quiet,
            },
        }

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files.clear()

    @vpmu.hookimpl
    def vpmu_vcpu_ready(self, vcpu: vpmu.Vcpu) -> None:
        # Line-buffered: a trace is complete up to the last access even if the run dies.
        out = open(  # noqa: SIM115 - held for the vCPU's life, closed by close()
            self.config.path.replace("{vcpu}", str(vcpu.index)), "w", buffering=1, encoding="ascii"
        )
        self.files.append(out)
        emit = out.write
        strategy = self.machine.strategy
        for msr, h in list(vcpu.msr_table.items()):
            rd = verdict(strategy.intercept(vcpu, h, False))
            wr = verdict(strategy.intercept(vcpu, h, True))
            vcpu.msr_table[msr] = dataclasses.replace(
                h, read=_read(emit, msr, rd, h.read), write=_write(emit, msr, wr, h.write)
            )
            vcpu.rebind_msr(msr)
        exits = verdict("rdpmc" if strategy.rdpmc_exits(vcpu) else None)
        vcpu.add_rdpmc(
            {ecx: _rdpmc(emit, ecx, exits, r) for ecx, r in vcpu.rdpmc_readers().items()}
        )


def _read(
    emit: Callable[[str], Any], msr: int, v: str, read: Callable[[], int]
) -> Callable[[], int]:
    ok, fault = f"rdmsr {msr:#x} # {v}\n", f"rdmsr {msr:#x} # {v} gp\n"

    def traced() -> int:
        try:
            value = read()
        except vpmu.GuestFault:
            emit(fault)
            raise
        emit(ok)
        return value

    return traced


def _write(
    emit: Callable[[str], Any], msr: int, v: str, write: Callable[[int], None]
) -> Callable[[int], None]:
    head, ok, fault = f"wrmsr {msr:#x} ", f" # {v}\n", f" # {v} gp\n"

    def traced(value: int) -> None:
        try:
            write(value)
        except vpmu.GuestFault:
            emit(f"{head}{value:#x}{fault}")
            raise
        emit(f"{head}{value:#x}{ok}")

    return traced


def _rdpmc(
    emit: Callable[[str], Any], ecx: int, v: str, read: Callable[[], int]
) -> Callable[[], int]:
    line = f"rdpmc {ecx:#x} # {v}\n"

    def traced() -> int:
        value = read()
        emit(line)
        return value

    return traced


@vpmu.hookimpl
def vpmu_register_extensions(register: Callable[[type[Any]], None]) -> None:
    register(Tracer)
