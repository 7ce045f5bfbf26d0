"""A pydantic validation error as one line naming the key of the file.

Why apart from the models: pydantic's error locations carry a tagged union's tag
(``pmu.intel.x``) and list indices; turning them back into the dotted key a person
wrote, and listing the keys allowed where an unknown one stood, is a walk over the
assembled root model that only an error takes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError


def explain(exc: ValidationError, model: type[BaseModel], source: str | None) -> ConfigError:
    err = exc.errors()[0]
    original = (err.get("ctx") or {}).get("error")
    if isinstance(original, ConfigError):  # a model validator's own, already precise
        return original.with_source(source) if source else original
    key_parts, parent = _resolve(model, tuple(err["loc"]))
    key = ".".join(key_parts) or "(root)"
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden" and parent is not None:
        keys = sorted(f.alias or n for n, f in parent.model_fields.items())
        return ConfigError(
            key, value, f"unknown key; allowed keys: {', '.join(keys)}", source=source
        )
    if kind == "missing":
        return ConfigError(key, None, "required key is missing", source=source)
    msg = err["msg"].replace("Input should be", "must be")
    return ConfigError(key, value, msg, source=source)


def _resolve(
    model: type[BaseModel], loc: tuple[Any, ...]
) -> tuple[list[str], type[BaseModel] | None]:
    """Turn pydantic's error location into a dotted key and the model owning its last part.

    pydantic puts a tagged union's tag value into the location (``pmu.intel.x``);
    it names no key of the file, so it is dropped here and used to pick the member.
    """
    parts: list[str] = []
    current: Any = model
    owner: type[BaseModel] | None = None
    i = 0
    while i < len(loc):
        part = loc[i]
        i += 1
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
            current = _first_model(current)
            continue
        model_now = _first_model(current)
        if model_now is None:
            parts.append(str(part))
            continue
        owner = model_now
        field = _field(model_now, str(part))
        parts.append(str(part))
        if field is None:
            current = None
            continue
        current = field.annotation
        members = _members(current)
        if len(members) > 1 and i < len(loc):
            tagged = _member_with_tag(members, loc[i])
            if tagged is not None:
                current = tagged
                i += 1
    return parts, owner


def _field(model: type[BaseModel], name: str) -> Any:
    for n, f in model.model_fields.items():
        if n == name or f.alias == name:
            return f
    return None


def _members(annotation: Any) -> list[type[BaseModel]]:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for a in get_args(annotation):
        found += _members(a)
    return found


def _first_model(annotation: Any) -> type[BaseModel] | None:
    members = _members(annotation)
    return members[0] if len(members) == 1 else None


def _member_with_tag(members: list[type[BaseModel]], tag: Any) -> type[BaseModel] | None:
    from typing import get_args

    for m in members:
        for t in ("backend", "name", "kind"):
            f = m.model_fields.get(t)
            if f is not None and tag in get_args(f.annotation):
                return m
    return None


__all__ = ["explain"]
