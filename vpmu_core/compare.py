"""``vpmu compare``: one config run under several strategies, side by side.

Why a module of its own: the comparison is the product of this project (the same
guest under each KVM design, priced by one cost table), and the CLI, tests and
notebooks all want the same per-strategy summary without parsing a table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .api import run
from .errors import ConfigError
from .plugins import PluginManager, default_manager
from .report import RunResult

PERF_KEYS = ("create", "release", "reuse", "period")


def parse_strategies(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """``"emulated,emulated-legacy:reprogram_on_pmi=cpu-changed"`` -> names and options."""
    out: list[tuple[str, dict[str, Any]]] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, opts = item.partition(":")
        options: dict[str, Any] = {}
        for kv in filter(None, opts.split(":")):
            key, eq, value = kv.partition("=")
            if not eq:
                raise ConfigError("--strategies", item, "options are name:key=value[:key=value]")
            options[key] = _value(value)
        out.append((name, options))
    if not out:
        raise ConfigError("--strategies", spec, "name at least one strategy")
    return out


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text


def compare(
    config: str | Path | dict[str, Any],
    strategies: list[tuple[str, dict[str, Any]]],
    plugins: PluginManager | None = None,
) -> dict[str, RunResult]:
    """Run ``config`` once per strategy; the config's own strategy options carry over
    to every strategy that has them, so only the design changes between columns."""
    pm = plugins or default_manager()
    if isinstance(config, dict):
        data, source = config, None
    else:
        path = Path(config)
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("file", source, f"cannot be read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("toml", source, f"not valid TOML: {exc}") from None
    base = dict(data.get("strategy", {}))
    results: dict[str, RunResult] = {}
    for name, options in strategies:
        cls = pm.get("strategies", name, "--strategies")
        fields = cls.Config.model_fields
        table = {k: v for k, v in base.items() if k in fields and k != "name"}
        table.update(options)
        table["name"] = name
        label = name + "".join(f":{k}={v}" for k, v in sorted(options.items()))
        result = run({**data, "strategy": table}, pm)
        result.config = source
        results[label] = result
    return results


def summary(result: RunResult) -> dict[str, Any]:
    """The per-strategy JSON record of ``vpmu compare --json``."""
    led = result.ledger
    perf = led.get("perf_ops", {})
    return {
        "overhead_ns": result.cost.total_ns,
        "overhead_pct": result.cost.overhead_pct,
        "exits": led.get("exits", {}),
        "perf_ops": {k: perf.get(k, 0) for k in PERF_KEYS}
        | {k: v for k, v in perf.items() if k not in PERF_KEYS},
        "pmis": led.get("pmis", {}),
        "context_switches": led.get("context_switches", {}),
        "switch_msrs": led.get("switch_msrs", {}),
        "count_error_pct": result.count_error_pct,
        "host_blind_s": result.host_blind_s,
        "ns_per_op": result.cost.ns_per_op,
        "workload": result.extra,
    }
