"""What a command line may change of a config: strategy specs and their values.

Why one module: ``vpmu compare --strategies`` and the conformance suite's
``--vpmu-strategy`` read the same ``name:key=value[:key=value]`` text, and a user
who learnt one must not find the other reads ``0x10`` or ``1.5`` differently.
"""

from __future__ import annotations

import tomllib
from typing import Any

from .errors import ConfigError

STRATEGY_SYNTAX = "name[:key=value[:key=value]...]"


def literal(text: str) -> Any:
    """A command-line value as TOML reads it (``true``, ``0x10``, ``1.5``), else the text."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_strategy(item: str, option: str = "--strategies") -> tuple[str, dict[str, Any]]:
    """``"emulated-legacy:reprogram_on_pmi=cpu-changed"`` -> the name and its options."""
    name, _, opts = item.strip().partition(":")
    if not name.strip():
        raise ConfigError(option, item, f"a strategy is {STRATEGY_SYNTAX}")
    options: dict[str, Any] = {}
    for kv in filter(None, opts.split(":")):
        key, eq, value = kv.partition("=")
        if not eq or not key.strip():
            raise ConfigError(option, item, f"options are {STRATEGY_SYNTAX}")
        options[key.strip()] = literal(value)
    return name.strip(), options


def parse_strategies(spec: str, option: str = "--strategies") -> list[tuple[str, dict[str, Any]]]:
    """``"emulated,emulated-legacy:reprogram_on_pmi=cpu-changed"`` -> names and options."""
    out = [parse_strategy(item, option) for item in spec.split(",") if item.strip()]
    if not out:
        raise ConfigError(option, spec, "name at least one strategy")
    return out
