"""Typed, frozen settings: the first thing built at start-up, handed to everyone else.

Where it sits: `faxbridge` (the CLI) calls `load_settings()` once; the resulting
`Settings` object is passed explicitly to the app, the SMTP front door, the runners and
the steps. There is no global config object.

Layers, later ones win:
  1. `config/defaults.toml` (every key, documented there),
  2. a site file named by `--config FILE` or `FAXBRIDGE_CONFIG`,
  3. single keys from the environment: `FAXBRIDGE__SMTP__MAX_MESSAGE_SIZE=1048576`.

An unknown key, a value of the wrong type or one out of range stops start-up with a
`SettingsError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# The documented defaults live in the source tree's config/; an installed copy (the
# container image) says where it put them with FAXBRIDGE_DEFAULTS.
SOURCE_DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "config" / "defaults.toml"
ENV_PREFIX = "FAXBRIDGE__"

M = TypeVar("M", bound=BaseModel)


class SettingsError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class Section(BaseModel):
    """A settings section: frozen, and an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceSettings(Section):
    fax_domains: tuple[str, ...] = Field(min_length=1)
    name: str
    default_region: str = Field(pattern=r"^[A-Z]{2}$")
    notices_from: str
    postal_address: str

    @field_validator("fax_domains")
    @classmethod
    def _lower_domains(cls, domains: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower().rstrip(".") for d in domains)

    @property
    def primary_domain(self) -> str:
        return self.fax_domains[0]


class PathSettings(Section):
    var_dir: Path
    spool_dir: Path


class DatabaseSettings(Section):
    url: str = Field(pattern=r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://")
    upgrade_on_start: bool














class QueueSettings(Section):
    lease_seconds: float = Field(gt=0)
    poll_seconds: float = Field(gt=0)
    intake_workers: int = Field(ge=1, le=64)
    defer_while_receiving_ms: float = Field(ge=0)
    max_deferral_seconds: float = Field(ge=0)
    shutdown_grace_seconds: float = Field(ge=0)






class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def load_into(
    model: type[M],
    site_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> M:
    """Build `model` (the product's settings) from the defaults, the site file and
    the environment."""
    environ = os.environ if environ is None else environ
    merged = _read_toml(Path(environ.get("FAXBRIDGE_DEFAULTS") or SOURCE_DEFAULTS_FILE))
    site = site_file or environ.get("FAXBRIDGE_CONFIG")
    if site:
        _overlay(merged, _read_toml(Path(site)))
    for key, raw in sorted(environ.items()):
        if key.startswith(ENV_PREFIX):
            _set_from_env(merged, key, raw)
    try:
        return model.model_validate(merged)
    except ValidationError as error:
        raise SettingsError(_explain(error, merged)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"configuration file {path} is not valid TOML: {error}") from None


def _overlay(base: dict[str, Any], top: Mapping[str, Any]) -> None:
    """Merge `top` into `base`: tables merge key by key, anything else replaces.

    An array of tables (such as [[smtp.listeners]]) replaces the default list whole:
    a site that declares its listeners wants exactly those.
    """
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = value


def _set_from_env(merged: dict[str, Any], env_key: str, raw: str) -> None:
    path = [part.lower() for part in env_key[len(ENV_PREFIX):].split("__") if part]
    if len(path) < 2:
        raise SettingsError(
            f"environment variable {env_key}: expected FAXBRIDGE__SECTION__KEY"
        )
    table = merged
    for part in path[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise SettingsError(f"environment variable {env_key}: {part} is not a table")
    table[path[-1]] = _parse_env_value(raw)


def _parse_env_value(raw: str) -> Any:
    """Read an environment value as a TOML value when it is one, else as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _explain(error: ValidationError, merged: Mapping[str, Any]) -> str:
    lines = ["invalid configuration:"]
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"  {location}: unknown key (see config/defaults.toml for the keys)")
            continue
        if problem["type"] == "missing":
            lines.append(f"  {location}: missing")
            continue
        lines.append(f"  {location} = {problem.get('input')!r}: {problem['msg']}")
    return "\n".join(lines)
