"""Config files: TOML in, one validated pydantic model out, or one clear error line.

The root model is *assembled* from the installed plugins: ``[pmu]`` is a union of
every backend's own model (discriminated by ``backend``), ``[strategy]`` of every
strategy's (by ``name``), ``[workload]`` of every workload's (by ``kind``), and each
registered extension owns a top-level table of its name. So ``vpmu schema`` is
exact for whatever is installed, and a typo anywhere is an error, never ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from .config_errors import explain
from .costs import cost_table_model
from .errors import ConfigError
from .host_pmu import check_guest_fits
from .host_pmu import resolve as resolve_host_pmu
from .io import read_toml

if TYPE_CHECKING:
    from .plugins import PluginManager

DISCRIMINATORS = {
    "pmu": ("backends", "backend"),
    "strategy": ("strategies", "name"),
    "workload": ("workloads", "kind"),
}


class Strict(BaseModel):
    """Base of every config table: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class MachineConfig(Strict):
    name: str = Field("vpmu", description="a label for reports")
    vcpus: int = Field(1, ge=1, le=4096, description="number of vCPUs")
    seed: int = Field(0, ge=0, description="seed of every random choice in a run")
    pmi_log: int = Field(
        64,
        ge=0,
        le=1_000_000,
        description="PMIs each vCPU keeps for inspection, the most recent (len(vcpu.pmis) "
        "counts every one taken)",
    )


class HostConfig(Strict):
    """The host: its pCPUs, its own PMU (each key unset = as the guest's) and host perf."""

    pcpus: int = Field(1, ge=1, le=4096, description="physical CPUs of the host")
    hz: int = Field(
        1000, ge=1, le=10000, description="host timer tick rate (and the guest's unless [guest] hz)"
    )
    nmi_watchdog: bool = Field(False, description="host NMI watchdog holds one counter per pCPU")
    version: int | None = Field(
        None,
        ge=0,
        le=6,
        description="host PMU version (default: as the guest's PMU); strategies check their "
        "needs against it, and the guest's version may not exceed it",
    )
    gp_counters: int | None = Field(
        None, ge=0, le=32, description="host GP counters per pCPU (default: as the guest's PMU)"
    )
    fixed_counters: int | None = Field(
        None, ge=0, le=4, description="host fixed counters per pCPU (default: as the guest's PMU)"
    )
    gp_width: int | None = Field(
        None, ge=8, le=64, description="host GP counter width (default: as the guest's PMU)"
    )
    fixed_width: int | None = Field(
        None, ge=8, le=64, description="host fixed counter width (default: as the guest's PMU)"
    )
    full_width_writes: bool | None = Field(
        None, description="host PERF_CAP_FW_WRITES (default: as the guest's PMU)"
    )
    global_status_set: bool | None = Field(
        None,
        description="host GLOBAL_STATUS_SET (default: Intel version >= 4 / AMD version 2 when "
        "version is given, else as the guest's PMU)",
    )
    vnmi: bool = Field(
        True,
        description="AMD: virtual NMIs (Zen 4+); without them each injected NMI costs two "
        "more exits (IRET intercept, single-step #DB). Intel always has virtual NMIs",
    )
    perf_record: list[str] = Field(
        default_factory=list,
        description="events of a host-wide `perf record` on every pCPU (flexible, one group each)",
    )
    mux_interval_ms: float | None = Field(
        None, gt=0, description="perf_event_mux_interval_ms (default: one tick, 1000/hz)"
    )
    slice_ms: float = Field(4.0, gt=0, description="vCPU time slice on its pCPU")
    migrate_every_slices: int = Field(
        0, ge=0, description="move each vCPU to the next pCPU every N slices (0: never)"
    )


def kernel_version(text: str) -> tuple[int, int]:
    """``"6.1"`` -> ``(6, 1)``; what [guest] kernel compares by."""
    major, _, minor = text.partition(".")
    return int(major), int(minor.split(".")[0])


class GuestConfig(Strict):
    """The guest kernel: which perf core and x86 driver issue the guest's MSR accesses.

    Why a table: the exit count of a profiled guest is the guest kernel's choice
    (spec/costs.md §3e): since 6.1 fixed-counter stop/start leave FIXED_CTR_CTRL to
    enable_all (fae9ebde9696); from 6.2 to 6.9 the tick toggled GLOBAL_CTRL around
    every frequency event (bd2756811766 dropped the outer perf_pmu_disable,
    0259bf63f71e restored it); HZ sets the tick and the default mux interval. None
    was published for the measured guests, so they are parameters with today's Linux
    as the default.
    """

    kernel: str = Field(
        "6.20",
        pattern=r"^[0-9]+\.[0-9]+$",
        description="guest Linux version, major.minor: decides the perf driver's MSR sequences",
    )
    hz: int | None = Field(None, ge=1, le=10000, description="guest CONFIG_HZ (default: [host] hz)")
    mux_interval_ms: float | None = Field(
        None,
        gt=0,
        description="perf_event_mux_interval_ms of the guest's PMU (default: one tick, "
        "1000/hz); a perf workload's own mux_interval_ms wins",
    )
    enable_gap_us: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="guest time between two of perf's per-fd enable ioctls, so N events "
        "start de-phased (an estimate: no figure is published; any value > 0 de-phases)",
    )
    clock: Literal["wall", "work"] = Field(
        "wall",
        description="what paces the guest's tick and mux timers: 'wall' (its TSC: work "
        "plus the priced time of every mechanism its vCPU caused, so a stall gets one "
        "tick when it ends) or 'work' (a what-if, the model before: one tick per tick "
        "period of work, every overhead on top)",
    )

    @property
    def version(self) -> tuple[int, int]:
        return kernel_version(self.kernel)


class FilterConfig(Strict):
    """KVM_SET_PMU_EVENT_FILTER, as a table."""

    action: Literal["allow", "deny"]
    events: list[int] = Field(
        default_factory=list, description="raw or masked entries, each a 64-bit word"
    )
    fixed_counter_bitmap: int = Field(0, ge=0, lt=1 << 32)
    masked: bool = False

    @field_validator("events")
    @classmethod
    def _u64(cls, events: list[int]) -> list[int]:
        """The ioctl carries __u64 words: a wider or negative entry is no filter KVM can get."""
        for i, e in enumerate(events):
            if not 0 <= e < 1 << 64:
                raise ConfigError(
                    f"filter.events[{i}]", e, "an entry is a 64-bit word: 0 <= entry < 2**64"
                )
        return events


#: The metrics a [compare] figure may name, with the unit each is in. A workload's
#: own figure is named ``workload:<key>`` (a key of the run's ``extra``) and its row
#: says the unit. vpmu_core.compare computes each; a test keeps the two in step.
METRICS: dict[str, tuple[str, str]] = {
    "score": (
        "%",
        "overhead as the lost share of the score, O/(T+O) (how the mediated RFC measured, "
        "costs.md §3b)",
    ),
    "time": ("%", "overhead over guest time, O/T"),
    "samples": ("%", "samples perf took as a % of what the asked rate gives (costs.md §1b)"),
}
WORKLOAD_METRIC = "workload:"


def _check_metric(key: str, metric: str, unit: str | None) -> None:
    if metric in METRICS:
        return
    if metric.startswith(WORKLOAD_METRIC) and len(metric) > len(WORKLOAD_METRIC):
        if unit is None:
            raise ConfigError(key, metric, "a workload:<key> metric needs its row's `unit`")
        return
    allowed = ", ".join(METRICS)
    raise ConfigError(key, metric, f"must be one of {allowed}, or workload:<key>")


class CompareRow(Strict):
    """One published figure per column: a workload variant and what it measures.

    Why metric, unit and source sit on the row: a published figure is only comparable
    with the model's when both say what was measured, in what unit, and where from.
    """

    label: str = Field(description="what the figure is, as the source names it")
    workload: dict[str, Any] = Field(
        default_factory=dict, description="keys merged into [workload] for this row"
    )
    published: list[float | None] | None = Field(
        None,
        description="the published figure of each column, in `strategies` order; "
        "`nan` for a column the source did not measure",
    )
    metric: str | None = Field(
        None,
        description="what the row's figure is: one of score, time, samples, or "
        "workload:<key> (a figure the workload reports); default: [compare] metric",
    )
    unit: str | None = Field(
        None, description="the figure's unit (default: the named metric's; needed for workload:)"
    )
    source: str | None = Field(
        None, description="where the published figures come from (a costs.md section)"
    )


class CompareConfig(Strict):
    """The strategies `vpmu compare CONFIG` runs and the published figures they model.

    Used when no --strategies is given; each column is the strategy modelling one
    published design, each row one published figure.
    """

    metric: str = Field(
        "time",
        description="the rows' default metric: "
        + "; ".join(f"{k}: {d}" for k, (_, d) in METRICS.items())
        + "; workload:<key>: a figure the workload reports",
    )
    strategies: list[str] = Field(
        default_factory=list, description="columns, as --strategies items (name:key=value)"
    )
    labels: list[str] | None = Field(None, description="column titles")
    designs: list[str] | None = Field(
        None,
        description="the published design each column models (DESIGN.md, 'which design each "
        "number belongs to')",
    )
    rows: list[CompareRow] = Field(
        default_factory=list, description="the published figures, one [[compare.rows]] each"
    )

    @model_validator(mode="after")
    def _check(self) -> CompareConfig:
        n = len(self.strategies)
        for key in ("labels", "designs"):
            given = getattr(self, key)
            if given is not None and len(given) != n:
                raise ConfigError(f"compare.{key}", len(given), f"must name all {n} columns")
        _check_metric("compare.metric", self.metric, "")
        for i, row in enumerate(self.rows):
            if row.published is not None and len(row.published) != n:
                raise ConfigError(
                    f"compare.rows[{i}].published", len(row.published), f"needs {n} cells"
                )
            _check_metric(f"compare.rows[{i}].metric", row.metric or self.metric, row.unit)
        if not self.rows:
            _check_metric("compare.metric", self.metric, None)
        return self

    def row_metric(self, row: CompareRow | None) -> tuple[str, str]:
        """The metric and unit of a row's figure (a table without rows: the default)."""
        metric = (row.metric if row is not None else None) or self.metric
        if row is not None and row.unit is not None:
            return metric, row.unit
        return metric, METRICS[metric][0] if metric in METRICS else ""


class ReportConfig(Strict):
    json_path: str | None = Field(None, alias="json", description="also write the result here")
    title: str | None = None


def _union(pm: PluginManager, kind: str, tag: str) -> Any:
    models = [cls.Config for cls in (pm.registry[kind][n] for n in pm.names(kind))]
    if not models:
        return None
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator=tag)]  # noqa: UP007


DEFAULT_STRATEGY = {"name": "emulated"}  # today's mainline KVM, when a config names none


def root_model(pm: PluginManager) -> type[BaseModel]:
    """The model of a whole config file for the plugins ``pm`` holds.

    Kept on the manager itself: a cache keyed by ``id(pm)`` could hand a new
    manager, allocated where a collected one lived, the old one's schema.
    """
    if pm._root_model is not None:
        cached: type[BaseModel] = pm._root_model
        return cached
    fields: dict[str, Any] = {
        "machine": (MachineConfig, Field(default_factory=MachineConfig)),
        "host": (HostConfig, Field(default_factory=HostConfig)),
        "guest": (GuestConfig, Field(default_factory=GuestConfig)),
        "filter": (FilterConfig | None, None),
        "costs": (costs := cost_table_model(pm.prices), Field(default_factory=costs)),
        "report": (ReportConfig, Field(default_factory=ReportConfig)),
        "compare": (CompareConfig | None, None),
    }
    for table, (kind, tag) in DISCRIMINATORS.items():
        union = _union(pm, kind, tag)
        if union is None:
            continue
        if table == "workload":
            fields[table] = (union | None, None)
        else:
            fields[table] = (union, ...)
    extensions = pm.names("extensions")
    if extensions:
        names: Any = Literal[tuple(extensions)]  # type: ignore[misc,valid-type]
        fields["extensions"] = (list[names], Field(default_factory=list))
        for name in extensions:
            fields[name] = (pm.registry["extensions"][name].Config | None, None)
    else:
        fields["extensions"] = (list[str], Field(default_factory=list, max_length=0))
    model = create_model("VpmuConfig", __config__=ConfigDict(extra="forbid"), **fields)
    pm._root_model = model
    return model


def _defaults(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data.setdefault("strategy", dict(DEFAULT_STRATEGY))
    return data


def load_dict(data: dict[str, Any], pm: PluginManager, *, source: str | None = None) -> Any:
    """Validate a config dict; raise ConfigError naming the first bad key."""
    _check_plugins(data, pm, source)
    model = root_model(pm)
    try:
        cfg: Any = model.model_validate(_defaults(data))
    except ValidationError as exc:
        raise explain(exc, model, source) from None
    for name in cfg.extensions:
        if getattr(cfg, name) is None:
            setattr(cfg, name, pm.registry["extensions"][name].Config())
    _cross_checks(cfg, pm, source)
    return cfg


def load_toml(path: str | Path, pm: PluginManager) -> Any:
    return load_dict(read_toml(path), pm, source=str(path))


def _check_plugins(data: dict[str, Any], pm: PluginManager, source: str | None) -> None:
    """Name a missing plugin and list what is installed, before pydantic's union error."""
    for table, (kind, tag) in DISCRIMINATORS.items():
        section = data.get(table)
        if table == "strategy" and section is None:
            section = DEFAULT_STRATEGY
        if not isinstance(section, dict):
            continue
        name = section.get(tag)
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{table}.{tag}", name, "must be a string", source=source)
        if name is None:
            installed = ", ".join(pm.names(kind)) or "none"
            raise ConfigError(
                f"{table}.{tag}", None, f"required; installed: {installed}", source=source
            )
        if name not in pm.registry[kind]:
            try:
                pm.get(kind, name, f"{table}.{tag}")
            except ConfigError as exc:
                raise exc.with_source(source) if source else exc from None
    for ext in data.get("extensions", []) or []:
        if isinstance(ext, str) and ext not in pm.registry["extensions"]:
            try:
                pm.get("extensions", ext, "extensions")
            except ConfigError as exc:
                raise exc.with_source(source) if source else exc from None


def _cross_checks(cfg: Any, pm: PluginManager, source: str | None) -> None:
    guest = pm.registry["backends"][cfg.pmu.backend](cfg.pmu, None).caps()
    try:
        check_guest_fits(resolve_host_pmu(cfg.host, guest), guest)
    except ConfigError as exc:
        raise exc.with_source(source) if source else exc from None
    components: list[type[Any]] = [
        pm.registry["backends"][cfg.pmu.backend],
        pm.registry["strategies"][cfg.strategy.name],
    ]
    if cfg.workload is not None:
        components.append(pm.registry["workloads"][cfg.workload.kind])
    components += [pm.registry["extensions"][e] for e in cfg.extensions]
    for comp in components:
        check = getattr(comp, "check", None)
        if check is None:
            continue
        try:
            check(cfg, pm)
        except ConfigError as exc:
            raise exc.with_source(source) if source else exc from None
