"""What a workload is: guest-side software that drives a machine's vCPUs.

A workload turns its ``[workload]`` table into guest operations through the
public vCPU API and the backend's :class:`~vpmu_core.guest.GuestDriver`, and
returns what the report shows: counter rows against their ground truth, the
guest time it represents, and anything of its own in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from ..machine import Machine


@dataclass
class CounterRow:
    vcpu: int
    counter: str
    event: str
    value: int
    expected: int | None = None


@dataclass
class WorkloadOutput:
    rows: list[CounterRow] = field(default_factory=list)
    guest_ns: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # a handful of guest operations whose guest time is only the gaps between them:
    # their overhead reads as time per operation, not as a share of that time
    operations: int | None = None


class Workload:
    """Base class; subclasses set ``name`` and ``Config`` (``kind: Literal[name]``)."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, machine: Machine) -> None:
        self.config = config
        self.machine = machine

    @classmethod
    def check(cls, config: Any, plugins: Any) -> None:
        """Refuse (ConfigError) a whole config this workload cannot run."""

    def run(self) -> WorkloadOutput:
        raise NotImplementedError
