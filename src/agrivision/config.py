"""Config files: safe YAML loading, and validation with messages that name the key.

Each config is owned by the code that uses it (the report's in :mod:`agrivision.report.config`,
the field table's in :mod:`agrivision.fields.config`, ...) and built on :class:`Section`.
YAML is read with a loader that builds only plain data (no Python object tags) and refuses
alias bombs (more than :data:`MAX_ALIASES` alias uses).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agrivision.errors import ConfigError

MAX_ALIASES = 16
MAX_CONFIG_BYTES = 1_000_000


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases: a billion-laughs document fails fast."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping safely.

    Raises
    ------
    ConfigError
        Unreadable, too large, not a mapping, Python tags, or too many aliases.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError("config file is larger than 1 MB", source=p)
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("config file not found", source=p, fix="check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config ({exc})", source=p) from exc
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"invalid YAML ({str(exc).splitlines()[0]})",
            source=p,
            fix="plain YAML only: no Python tags, at most 16 aliases",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a config must be a YAML mapping (key: value)", source=p)
    return data


class Section(BaseModel):
    """A config section: unknown keys are refused and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: dict[str, Any], source: str | os.PathLike | None) -> M:
    """Validate ``data`` against ``model``; the error names the key and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent: Any = model
            for part in err["loc"][:-1]:
                field = parent.model_fields.get(str(part))
                parent = field.annotation if field is not None else parent
            allowed = ", ".join(getattr(parent, "model_fields", {}))
            raise ConfigError(
                f"unknown key {key!r}", source=source, fix=f"allowed: {allowed}"
            ) from exc
        raise ConfigError(f"{key}: {err['msg']}", source=source) from exc
