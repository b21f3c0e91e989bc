"""The product's settings: one typed, frozen object made of every room's section.

Where it sits: `faxbridge` (the CLI) calls `load_settings()` once and passes the result
to the app (bridge.app), which hands it on; there is no global config object. Each room
keeps its own section's model beside its code (bridge/smtp/settings.py,
bridge/outbound/settings.py, bridge/mail/settings.py, ...); the loader that reads the
defaults, the site file and the environment is bridge.core.settings. Rooms import this
module only for type annotations (under TYPE_CHECKING): at run time they are handed the
object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bridge.abuse.settings import AbuseSettings
from bridge.accounts.settings import AccountSettings
from bridge.core.settings import (
    DatabaseSettings,
    LoggingSettings,
    PathSettings,
    QueueSettings,
    Section,
    ServiceSettings,
    load_into,
)
from bridge.faxline.settings import FaxLineSettings
from bridge.inbound.settings import InboundSettings
from bridge.mail.settings import DkimSettings, MailSettings
from bridge.money.settings import MoneySettings
from bridge.outbound.settings import IntakeSettings, RenderSettings, TransmitSettings
from bridge.smtp.settings import SmtpSettings
from bridge.web.settings import HttpSettings


class Settings(Section):
    """Every section of config/defaults.toml, one attribute each."""

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
    """The settings from config/defaults.toml, the site file and the environment
    (bridge.core.settings says how they layer); SettingsError when they cannot be used."""
    return load_into(Settings, site_file, environ)

