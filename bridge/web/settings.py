"""[http]: the one HTTP listener components add their pages to.

Where it sits: read by bridge.web.app (host, port, public URL) and by the pages that
components add (the inbound flow's unsubscribe page and message center); part of
bridge.settings.Settings.
"""

from __future__ import annotations

from pydantic import Field

from bridge.core.settings import Section as _Section


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
