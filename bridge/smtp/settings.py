"""[smtp]: the front door's listeners and limits.

Where it sits: read by bridge.smtp.frontdoor; part of the product's settings
(bridge.settings.Settings.smtp), each key documented in config/defaults.toml.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bridge.core.settings import Section as _Section


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
