"""The mail of inbound delivery: the fax mail itself, its footers, and the account
notices that opt-outs and bounces cause.

Where it sits: the `decorate` step asks `Footers` for the footer of an account's mail;
the `deliver` step builds the fax mail with `fax_mail`; the opt-out and bounce handlers
build their notices with `account_notice`. Everything goes out through the outbox.

R-MAIL-3: inbound faxes arrive as attachments and may carry promotional content.
R-MAIL-1: such content comes with an opt-out (List-Unsubscribe, RFC 2369/8058).
R-MAIL-2: account notices are service announcements: never an opt-out, never promotion.
"""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.core.settings import SOURCE_DEFAULTS_FILE
from bridge.inbound.jobs import Footer, InboundFaxJob
from bridge.mail.mime import Attachment, FaxMail

if TYPE_CHECKING:
    from bridge.settings import Settings

BUILTIN_TEMPLATES = SOURCE_DEFAULTS_FILE.parent / "templates"


class Footers:
    """Footers from the templates in `inbound.templates_dir` (read once, at start)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        folder = Path(settings.inbound.templates_dir) if settings.inbound.templates_dir else BUILTIN_TEMPLATES
        self.promo_text = Template((folder / "promo.txt").read_text(encoding="utf-8"))
        self.promo_html = Template((folder / "promo.html").read_text(encoding="utf-8"))

    def unsubscribe_url(self, token: str) -> str:
        return f"{self.settings.http.public_url.rstrip('/')}/u/{token}"

    def unsubscribe_mailto(self, token: str) -> str:
        return f"mailto:unsubscribe+{token}@{self.settings.service.primary_domain}"

    def footer(self, *, promotional: bool, unsubscribe_token: str | None) -> Footer:
        service = self.settings.service
        address_text = (f"{service.name}, {service.postal_address}" if service.name not in service.postal_address
                        else service.postal_address)
        text = f"-- \n{address_text}\n"
        markup = f'<p style="color:#777;font-size:12px">{html.escape(address_text)}</p>'
        if not promotional:
            return Footer(promotional=False, text=text, html=markup)
        assert unsubscribe_token is not None
        values = {
            "service_name": service.name,
            "postal_address": service.postal_address,
            "public_url": self.settings.http.public_url,
            "unsubscribe_url": self.unsubscribe_url(unsubscribe_token),
        }
        promo_text = self.promo_text.safe_substitute(values).rstrip()
        promo_html = self.promo_html.safe_substitute({k: html.escape(v) for k, v in values.items()}).rstrip()
        return Footer(
            promotional=True,
            text=f"{promo_text}\n\n{text}",
            html=f"{promo_html}\n{markup}",
            list_unsubscribe=(f"<{self.unsubscribe_mailto(unsubscribe_token)}>, "
                              f"<{self.unsubscribe_url(unsubscribe_token)}>"),
        )


def fax_mail(
    settings: Settings,
    job: InboundFaxJob,
    *,
    to: str,
    envelope_from: str,
    time_zone: str,
    attachment: Attachment,
) -> FaxMail:
    """The mail that brings a received fax to one delivery address (R-MAIL-3). Written
    by bridge.mail.mime rather than `email`: it is the one large mail the service sends
    often (bench/inbound)."""
    caller = job.caller_number or "an unknown caller"
    pages = f"{job.pages} page{'s' if job.pages != 1 else ''}"
    received = _local_time(job.received_at, time_zone)
    facts = [
        ("Received", received),
        ("From (caller ID)", job.caller_number or "withheld"),
        ("Sending station", job.remote_station_id or "not given"),
        ("To your number", job.to_number),
        ("Pages", str(job.pages)),
        ("Line time", _duration(job.line_seconds)),
        ("Reference", job.id),
    ]
    footer = job.footer
    headers = [
        ("From", settings.service.notices_from),
        ("To", to),
        ("Subject", f"Fax from {caller}, {pages}"),
        ("Auto-Submitted", "auto-generated"),
        ("Return-Path", envelope_from),  # the outbox makes it the envelope sender
    ]
    if footer is not None and footer.list_unsubscribe:
        headers.append(("List-Unsubscribe", footer.list_unsubscribe))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # RFC 8058
    width = max(len(label) for label, _ in facts)
    text = [f"You received a fax on {job.to_number}.", ""]
    text += [f"{label + ':':<{width + 1}} {value}" for label, value in facts]
    text += ["", f"The fax is attached ({attachment.filename}).", ""]
    if footer is not None:
        text.append(footer.text)
    rows = "".join(
        f'<tr><th align="left" style="padding-right:12px">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
        for label, value in facts
    )
    markup = (
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\">\n"
        f"<p>You received a fax on {html.escape(job.to_number)}.</p>\n"
        f"<table>{rows}</table>\n"
        f"<p>The fax is attached ({html.escape(attachment.filename)}).</p>\n"
        f"{footer.html if footer is not None else ''}\n"
        "</body></html>"
    )
    return FaxMail(headers, "\n".join(text), markup, attachment)


def account_notice(settings: Settings, *, to: list[str], subject: str, body: str) -> EmailMessage:
    """A service announcement about the account (R-MAIL-2): no opt-out, no promotion."""
    service = settings.service
    message = EmailMessage()
    message["From"] = service.notices_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(f"{body.rstrip()}\n\n-- \n{service.name}\n{service.postal_address}\n")
    return message


def _local_time(moment: datetime, zone: str) -> str:
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    local = moment.astimezone(tz)
    return local.strftime("%A %d %B %Y, %H:%M:%S ") + (local.tzname() or zone)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d} (min:s)"
