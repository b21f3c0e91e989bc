"""Settings of inbound delivery, DKIM and the web endpoint (opt-out, message center).

Where it sits: `bridge.core.settings.Settings` carries them as `inbound`, `dkim` and `http`
(config sections [inbound], [dkim], [http], each key documented in
config/defaults.toml). Plain pydantic models, no imports from the rest of faxbridge.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InboundSettings(_Section):
    """[inbound]: what happens to a fax received on one of the service's numbers."""

    pipeline: tuple[str, ...] = Field(("store", "to-pdf", "decorate", "deliver"), min_length=1)
    workers: int = Field(2, ge=1, le=64)
    batch: int = Field(16, ge=1, le=256)
    processes: int = Field(2, ge=0, le=64)
    # A fax for a number with no active holder (unassigned, suspended, or its account
    # suspended or closed) is answered by the line, then "discard"ed or "hold"-ed in
    # spool/inbound/held/ for an operator; never delivered to a former holder.
    unrouted: Literal["discard", "hold"] = "discard"
    # Days a held fax waits for an operator before it is purged (R-STORE-2).
    held_days: int = Field(30, ge=1, le=3650)
    # Where stored faxes live (the message center, R-STORE-1); "" = <var_dir>/faxes.
    store_dir: str = ""
    # R-STORE-1: days a received fax is kept, by plan; plans not named keep their
    # faxes for the life of the account.
    retention_days: dict[str, int] = Field(default_factory=lambda: {"free": 30})
    purge_interval_seconds: float = Field(3600, gt=0)
    # R-ACCT-5 (iii) and (ii): plans whose accounts are closed when the customer opts
    # out of promotional mail, and when no delivery address works any more.
    close_on_opt_out: tuple[str, ...] = ("free",)
    close_on_bounces: tuple[str, ...] = ("free",)
    # R-ACCT-5 (i): plans whose accounts are closed after this many days without a
    # received fax (bridge/inbound/idle.py); plans not named are never closed for it.
    close_when_idle_days: dict[str, int] = Field(default_factory=lambda: {"free": 30})
    # Hard bounces (DSN status 5.x.x) after which a delivery address counts as failing.
    hard_bounces_to_fail: int = Field(1, ge=1, le=100)
    # Folder of the footer templates (promo.txt, promo.html); "" = the built-in
    # config/templates of the source tree.
    templates_dir: str = ""


class DkimSettings(_Section):
    """[dkim]: signing of every mail the service sends."""

    enabled: bool = True
    # Signing domain (d=); "" = service.fax_domains[0].
    domain: str = ""
    selector: str = Field("faxbridge", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    # Selector of the ed25519 key; "" = "<selector>-ed25519" (each key needs its own
    # DNS name: a verifier fetching one selector must find exactly one key).
    ed25519_selector: str = Field("", pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*)?$")
    # Both by default: receivers that know ed25519 (RFC 8463) use it, the rest RSA.
    algorithms: tuple[Literal["rsa-sha256", "ed25519-sha256"], ...] = Field(
        ("rsa-sha256", "ed25519-sha256"), min_length=1
    )
    # PEM files of the private keys; "" = <var_dir>/dkim/<selector>.<algorithm>.pem,
    # generated on first start.
    rsa_key: str = ""
    ed25519_key: str = ""
    rsa_bits: int = Field(2048, ge=1024, le=4096)
    # "native": canonicalization here and signatures by `cryptography` (~7-10 ms a fax mail);
    # "dkimpy": dkimpy's dkim.sign (~55 ms per key on a fax mail, holding the GIL).
    engine: Literal["native", "dkimpy"] = "native"
    headers: tuple[str, ...] = (
        "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version",
        "Content-Type", "In-Reply-To", "References", "Auto-Submitted",
        "List-Unsubscribe", "List-Unsubscribe-Post",
    )


class HttpSettings(_Section):
    """[http]: the web endpoint (one-click unsubscribe, RFC 8058; the message center)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    # The address customers reach it at, used in List-Unsubscribe links.
    public_url: str = Field("https://fax.localhost", pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # The message center (R-STORE-1): /messages, log in with email address and PIN.
    message_center: bool = True
    # How long a message-center login lasts.
    session_seconds: float = Field(3600, gt=0, le=7 * 86400)
    # Failed logins allowed per address within the window before more are refused (429).
    login_max_failures: int = Field(5, ge=1, le=1000)
    login_failure_window_seconds: float = Field(900, gt=0)
