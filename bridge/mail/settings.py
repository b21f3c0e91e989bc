"""[mail] and [dkim]: how the service's own mail leaves, and how it is signed.

Where it sits: read by the mail runner's transports (bridge.mail.transports) and the
DKIM signer (bridge.mail.dkim); part of bridge.settings.Settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from bridge.core.settings import Section as _Section


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
