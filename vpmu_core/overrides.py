"""What a command line may change of a config: strategy specs, ``--set`` and ``--param``.

Why one module: ``vpmu compare --strategies``, the conformance suite's
``--vpmu-strategy``, ``--set`` on every command that runs a config and ``vpmu sweep
--param`` read values the same way, and a user who learnt one must not find another
reads ``0x10``, ``1.5`` or a list differently.

The value syntax (docs/guide.md, "Changing a config from the command line"):

- a TOML literal is read as TOML: ``4000``, ``0x10``, ``1.5``, ``true``,
  ``"quoted text"``, ``["instructions", "cycles"]``;
- anything else is a string (``every-exit``), except that
- ``+`` joins list items and ``N*item`` repeats one: ``6*instructions`` is six
  ``"instructions"``, ``instructions+cycles`` is two items, ``1*cycles`` a list of one.

``--param KEY=V1,V2`` splits its values at commas outside brackets and quotes, so a
value with a comma is written as TOML: ``workload.events=["a","b"],["c"]`` is two
points, and ``"a,b"`` is one string.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .config import read_toml
from .errors import ConfigError

STRATEGY_SYNTAX = "name[:key=value[:key=value]...]"
SET_SYNTAX = "KEY=VALUE with KEY dotted as in docs/config.md (e.g. workload.freq=4000)"
PARAM_SYNTAX = "KEY=V1,V2,... with KEY dotted as in docs/config.md (e.g. workload.freq=250,1000)"

_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")
_REPEAT = re.compile(r"(\d+)\*(.+)")


def literal(text: str) -> Any:
    """A command-line value as TOML reads it (``true``, ``0x10``, ``1.5``), else the text."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def value(text: str) -> Any:
    """A ``--set``/``--param`` value: a TOML literal, a ``+``/``N*`` list, or the text."""
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "+" not in text and not _REPEAT.fullmatch(text):
        return text
    items: list[Any] = []
    for part in text.split("+"):
        m = _REPEAT.fullmatch(part.strip())
        if m is not None:
            items += [literal(m[2])] * int(m[1])
        elif part.strip():
            items.append(literal(part))
    return items


def split_values(text: str) -> list[str]:
    """``a,[b,c],"d,e"`` -> ``a``, ``[b,c]``, ``"d,e"``: commas split at the top level only."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _key(item: str, option: str, syntax: str) -> tuple[str, str]:
    key, eq, rest = item.partition("=")
    key = key.strip()
    if not eq or not _KEY.fullmatch(key):
        raise ConfigError(option, item, f"write {syntax}")
    return key, rest


def parse_set(item: str, option: str = "--set") -> tuple[str, Any]:
    """``"workload.freq=4000"`` -> ``("workload.freq", 4000)``; the value is never split."""
    key, rest = _key(item, option, SET_SYNTAX)
    if not rest.strip():
        raise ConfigError(option, item, f"write {SET_SYNTAX}; the value is empty")
    return key, value(rest)


def parse_param(item: str, option: str = "--param") -> tuple[str, list[str]]:
    """``"workload.freq=250,1000"`` -> the key and each value's text (read with :func:`value`)."""
    key, rest = _key(item, option, PARAM_SYNTAX)
    texts = split_values(rest)
    if any(not t for t in texts):
        raise ConfigError(option, item, f"write {PARAM_SYNTAX}; a value is empty")
    if len(set(texts)) != len(texts):
        raise ConfigError(option, item, "each value once")
    return key, texts


def apply(data: dict[str, Any], overrides: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the config tables with each dotted key set (tables made as needed).

    A key is checked by the config's validation afterwards, like one in the file;
    here only a path through something that is not a table is refused.
    """
    out = copy.deepcopy(data)
    for key, val in overrides:
        *tables, last = key.split(".")
        node = out
        for i, name in enumerate(tables):
            nxt = node.setdefault(name, {})
            if not isinstance(nxt, dict):
                where = ".".join(tables[: i + 1])
                raise ConfigError(key, val, f"{where} is a value, not a table")
            node = nxt
        node[last] = copy.deepcopy(val)
    return out


def configured(
    config: str | Path | dict[str, Any], sets: Sequence[str] = ()
) -> tuple[dict[str, Any], str | None]:
    """A config's tables with the ``--set KEY=VALUE`` items applied, and its file name
    (None for a dict): what ``run``, ``compare``, ``sweep`` and ``reproduce`` validate."""
    if isinstance(config, dict):
        data, source = config, None
    else:
        data, source = read_toml(config), str(config)
    return apply(data, [parse_set(s) for s in sets]), source


def parse_strategy(item: str, option: str = "--strategies") -> tuple[str, dict[str, Any]]:
    """``"emulated-legacy:reprogram_on_pmi=cpu-changed"`` -> the name and its options."""
    name, _, opts = item.strip().partition(":")
    if not name.strip():
        raise ConfigError(option, item, f"a strategy is {STRATEGY_SYNTAX}")
    options: dict[str, Any] = {}
    for kv in filter(None, opts.split(":")):
        key, eq, val = kv.partition("=")
        if not eq or not key.strip():
            raise ConfigError(option, item, f"options are {STRATEGY_SYNTAX}")
        options[key.strip()] = literal(val)
    return name.strip(), options


def parse_strategies(spec: str, option: str = "--strategies") -> list[tuple[str, dict[str, Any]]]:
    """``"emulated,emulated-legacy:reprogram_on_pmi=cpu-changed"`` -> names and options;
    a strategy named twice with the same options is refused (two equal columns)."""
    out = [parse_strategy(item, option) for item in spec.split(",") if item.strip()]
    if not out:
        raise ConfigError(option, spec, "name at least one strategy")
    seen: set[str] = set()
    for name, options in out:
        label = strategy_label(name, options)
        if label in seen:
            raise ConfigError(option, spec, f"each strategy once: {label} is named twice")
        seen.add(label)
    return out


def strategy_label(name: str, options: dict[str, Any]) -> str:
    """The column name of a strategy and its options: ``name:key=value...``, keys sorted."""

    def text(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)  # as typed: TOML's true

    return name + "".join(f":{k}={text(v)}" for k, v in sorted(options.items()))
