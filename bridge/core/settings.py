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
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.abuse.settings import AbuseSettings
from bridge.faxline.virtual import VirtualLineSettings
from bridge.inbound.settings import DkimSettings, HttpSettings, InboundSettings
from bridge.money.settings import MoneySettings

# The documented defaults live in the source tree's config/; an installed copy (the
# container image) says where it put them with FAXBRIDGE_DEFAULTS.
SOURCE_DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "config" / "defaults.toml"
ENV_PREFIX = "FAXBRIDGE__"


class SettingsError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServiceSettings(_Section):
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


class PathSettings(_Section):
    var_dir: Path
    spool_dir: Path


class DatabaseSettings(_Section):
    url: str = Field(pattern=r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://")
    upgrade_on_start: bool


class ListenerSettings(_Section):
    name: str
    host: str
    port: int = Field(ge=0, le=65535)
    tls: Literal["none", "implicit"]
    starttls: bool = False
    require_tls: bool = False
    auth: Literal["none", "optional", "required"] = "none"


class SmtpSettings(_Section):
    max_message_size: int = Field(gt=0)
    max_recipients: int = Field(ge=1, le=1000)
    hostname: str
    tls_cert: str
    tls_key: str
    timeout: float = Field(gt=0)
    commit_window_ms: float = Field(ge=0, le=1000)
    sender_cache_seconds: float = Field(ge=0, le=3600)
    listeners: tuple[ListenerSettings, ...] = Field(min_length=1)


class IntakeSettings(_Section):
    pipeline: tuple[str, ...] = Field(min_length=1)
    next_queue: str
    duplicate_window_hours: float = Field(ge=0)


class RenderSettings(_Section):
    resolution: Literal["fine", "standard"]
    compression: Literal["g4", "g3-1d", "g3-2d"]
    max_pages: int = Field(ge=1, le=10_000)
    max_input_bytes: int = Field(gt=0)
    document_timeout_seconds: float = Field(gt=0)
    document_memory_bytes: int = Field(ge=64 * 1024 * 1024)
    cover_page: bool
    station_number: str = Field(pattern=r"^\+[1-9][0-9]{6,14}$")
    soffice_path: str


class FaxLineSettings(_Section):
    line: Literal["virtual"]
    virtual: VirtualLineSettings


class TransmitSettings(_Section):
    max_attempts: int = Field(ge=1, le=20)
    busy_retry_seconds: float = Field(ge=0)
    no_answer_retry_seconds: float = Field(ge=0)
    dropped_retry_seconds: float = Field(ge=0)
    backoff_factor: float = Field(ge=1)
    station_id: str = Field(max_length=20, pattern=r"^[\x20-\x7e]*$")
    blocked_prefixes: tuple[str, ...]
    block_premium_rate: bool

    @field_validator("blocked_prefixes")
    @classmethod
    def _prefixes_are_e164(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in prefixes:
            if not re.fullmatch(r"\+[0-9]{1,15}", prefix):
                raise ValueError(f"{prefix!r} is not an E.164 prefix such as '+1900'")
        return prefixes


class QueueSettings(_Section):
    lease_seconds: float = Field(gt=0)
    poll_seconds: float = Field(gt=0)
    intake_workers: int = Field(ge=1, le=64)
    defer_while_receiving_ms: float = Field(ge=0)
    max_deferral_seconds: float = Field(ge=0)
    shutdown_grace_seconds: float = Field(ge=0)


class MailSettings(_Section):
    transport: Literal["maildir", "smtp"]
    maildir_root: Path
    relay_host: str
    relay_port: int = Field(ge=1, le=65535)
    relay_tls: Literal["none", "starttls", "implicit"]
    relay_username: str
    relay_password: str
    retry_delays: tuple[float, ...] = Field(min_length=1)
    give_up_after_hours: float = Field(gt=0)


class AccountSettings(_Section):
    default_plan: Literal["free", "plus", "pro", "broadcast"]


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(_Section):
    service: ServiceSettings
    paths: PathSettings
    database: DatabaseSettings
    smtp: SmtpSettings
    intake: IntakeSettings
    render: RenderSettings
    faxline: FaxLineSettings
    transmit: TransmitSettings
    queue: QueueSettings
    mail: MailSettings
    accounts: AccountSettings
    logging: LoggingSettings
    abuse: AbuseSettings
    money: MoneySettings
    inbound: InboundSettings
    dkim: DkimSettings
    http: HttpSettings

    @property
    def tls_dir(self) -> Path:
        return self.paths.var_dir / "tls"


def load_settings(
    site_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from the defaults, the site file and the environment."""
    environ = os.environ if environ is None else environ
    merged = _read_toml(Path(environ.get("FAXBRIDGE_DEFAULTS") or SOURCE_DEFAULTS_FILE))
    site = site_file or environ.get("FAXBRIDGE_CONFIG")
    if site:
        _overlay(merged, _read_toml(Path(site)))
    for key, raw in sorted(environ.items()):
        if key.startswith(ENV_PREFIX):
            _set_from_env(merged, key, raw)
    try:
        return Settings.model_validate(merged)
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
