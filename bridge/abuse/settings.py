"""The [abuse] section of the settings (documented in config/defaults.toml).

Where it sits: `bridge.core.settings.Settings.abuse`; read by the abuse component, its
poller and its pipeline. Kept here so the abuse area owns its keys; it imports nothing
from the rest of faxbridge (bridge.core.settings imports it).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AbuseSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # The embedded default has no IMAP server, so the poller is off unless a site turns it on.
    enabled: bool
    # The steps each message of the mailbox goes through (handlers/abuse/).
    pipeline: tuple[str, ...] = Field(min_length=1)
    imap_host: str
    imap_port: int = Field(ge=1, le=65535)
    imap_user: str
    # Empty: take it from the environment variable named by imap_password_env.
    imap_password: str
    imap_password_env: str
    # "verify" (system CAs), "insecure" (no check; tests), or a path to a CA bundle file.
    imap_tls_verify: str
    imap_timeout_seconds: float = Field(gt=0)
    mailbox: str
    processed_folder: str
    quarantine_folder: str
    idle_seconds: float = Field(gt=0, le=29 * 60)
    poll_seconds: float = Field(gt=0)
    reconnect_min_seconds: float = Field(gt=0)
    reconnect_max_seconds: float = Field(gt=0)
    # R-ABUSE-3: distinct reporters about one account within window_days that suspend it.
    suspend_threshold: int = Field(ge=1)
    window_days: int = Field(ge=1, le=365)
    regions: tuple[str, ...] = Field(min_length=1)
    max_message_bytes: int = Field(gt=0)
    max_mime_depth: int = Field(ge=1, le=100)
    max_parts: int = Field(ge=1)
    max_received_headers: int = Field(ge=1)
    max_text_chars: int = Field(gt=0)
    max_numbers: int = Field(ge=1)
    ocr: bool
    ocr_timeout_seconds: float = Field(gt=0)
    parse_timeout_seconds: float = Field(gt=0)
    policy_url: str

    @field_validator("regions")
    @classmethod
    def _regions_are_codes(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers

        for region in regions:
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{region!r} is not a region code phonenumbers knows (e.g. 'US', 'GB')")
        return regions
