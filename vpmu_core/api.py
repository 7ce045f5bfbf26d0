"""``vpmu.run``: a whole config-driven run, from TOML to :class:`RunResult`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from .config import load_dict, load_toml
from .costs import price
from .errors import ConfigError
from .ledger import with_transitions
from .machine import Machine
from .plugins import PluginManager, default_manager
from .report import CounterResult, RunResult
from .version import __version__


def load_config(source: str | Path | dict[str, Any], plugins: PluginManager | None = None) -> Any:
    pm = plugins or default_manager()
    if isinstance(source, dict):
        return load_dict(source, pm)
    return load_toml(source, pm)


def run(
    source: str | Path | dict[str, Any] | Any,
    plugins: PluginManager | None = None,
    progress: Callable[[float], None] | None = None,
    *,
    name: str | None = None,
) -> RunResult:
    """Build the machine a config describes, run its workload, and price the ledger.

    ``progress`` hears the share of guest time done (0..1) from workloads that can
    tell, so a front end can show a bar; it never changes what is simulated. ``name``
    is the file a dict was read from (command-line overrides applied), for errors
    and the result's ``config``.
    """
    pm = plugins or default_manager()
    if isinstance(source, (str, Path)):
        name = str(source)
    if isinstance(source, dict):
        cfg = load_dict(source, pm, source=name)
    else:
        cfg = load_config(source, pm) if isinstance(source, (str, Path)) else source
    if cfg.workload is None:
        raise ConfigError("workload", None, "a run needs a [workload] table", source=name)
    machine = Machine(cfg, pm)
    workload = pm.registry["workloads"][cfg.workload.kind](cfg.workload, machine)
    if progress is not None and hasattr(workload, "progress"):
        workload.progress = progress
    logger.info("running {} on {}", workload.name, machine)
    out = workload.run()
    machine.teardown()
    machine.strategy.finish()
    ledger = with_transitions(machine.ledger.as_dict(), machine.strategy.transition_msrs_per_exit)
    errors = [
        abs(r.value - r.expected) / r.expected
        for r in out.rows
        if r.expected is not None and r.expected > 0
    ]
    return RunResult(
        vpmu_version=__version__,
        config=name,
        machine=machine.name,
        backend=machine.backend.name,
        strategy=machine.strategy.name,
        workload=workload.name,
        extensions=list(machine.extensions),
        counters=[CounterResult(**r.__dict__) for r in out.rows],
        pmis=[len(v.pmis) for v in machine.vcpus],
        pmis_dropped=[v.pmis_dropped for v in machine.vcpus],
        ledger=ledger,
        cost=price(ledger, cfg.costs, out.guest_ns),
        count_error_pct=100.0 * max(errors) if errors else None,
        host_blind_s=machine.strategy.host_blind_ns(out.guest_ns) / 1e9,
        extra=out.extra,
        operations=out.operations,
    )
