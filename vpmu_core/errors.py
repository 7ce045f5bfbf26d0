"""Exceptions of vpmu.

A guest never sees a Python exception other than :class:`GuestFault`: that is the
architectural answer (#GP) the hardware would give. Everything a *user* can get
wrong (a config, a filter, a snapshot) raises a :class:`ValueError` subclass whose
message is one line naming the key, the bad value and what is allowed, so the CLI
can print it as is.
"""

from __future__ import annotations

from typing import Any


class VpmuError(Exception):
    """Base of every error vpmu raises on purpose."""


class GuestFault(VpmuError):
    """An exception delivered to the guest, e.g. #GP (vector 13) on a WRMSR."""

    def __init__(self, vector: int = 13, reason: str = "") -> None:
        self.vector = vector
        self.reason = reason
        super().__init__(f"guest fault #{_VECTOR_NAMES.get(vector, vector)}: {reason}")


_VECTOR_NAMES = {13: "GP", 6: "UD"}


class ConfigError(VpmuError, ValueError):
    """A config (file, dict or CLI option) that cannot be run.

    ``key`` is the dotted path of the offending key, ``value`` what was given and
    ``allowed`` a short description of what would be accepted.
    """

    def __init__(self, key: str, value: Any, allowed: str, *, source: str | None = None) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key} = {_show(value)}: {allowed}")

    def with_source(self, source: str) -> ConfigError:
        return ConfigError(self.key, self.value, self.allowed, source=source)


class FilterError(VpmuError, ValueError):
    """An event filter KVM_SET_PMU_EVENT_FILTER would reject; ``errno`` is KVM's answer."""

    def __init__(self, errno: str, message: str) -> None:
        self.errno = errno
        super().__init__(f"event filter rejected ({errno}): {message}")


class SnapshotError(VpmuError, ValueError):
    """A snapshot that cannot be restored into this machine."""


class PluginError(VpmuError):
    """A plugin misbehaved: named in the message together with the hook involved."""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    # register-sized numbers (MSR indices, event selects) read best in hex; counts and
    # costs in decimal
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 20:
        return hex(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
