"""The result of a run: one pydantic model, JSON out, rich tables for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .costs import Priced
from .io import atomic_write_text


class CounterResult(BaseModel):
    vcpu: int
    counter: str
    event: str
    value: int
    expected: int | None = Field(None, description="ground truth the workload retired")


class RunResult(BaseModel):
    vpmu_version: str
    config: str | None
    machine: str
    backend: str
    strategy: str
    workload: str | None
    extensions: list[str]
    counters: list[CounterResult]
    pmis: list[int] = Field(description="PMIs delivered, per vCPU")
    pmis_dropped: list[int] = Field(description="PMIs dropped at a masked LVTPC, per vCPU")
    ledger: dict[str, dict[str, int]]
    cost: Priced
    count_error_pct: float | None = Field(
        None, description="largest |counted - retired| / retired over the counter rows, in %"
    )
    host_blind_s: float = Field(0.0, description="guest time host perf could not see the PMU")
    operations: int | None = Field(
        None,
        description="guest operations of a workload that is a handful of them (toggle): its "
        "overhead reads per operation, its guest time being only the gaps between them",
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")
