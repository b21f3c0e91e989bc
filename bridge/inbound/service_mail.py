"""The service addresses of inbound delivery: `unsubscribe+TOKEN@` and `bounces+TOKEN@`.

Where it sits: the SMTP front door calls `handle(recipient, envelope_from, content)`
at DATA for mail to these addresses (bridge.core.component.ServiceMailHandler). The
change is committed before the reply, so a 250 means it is done:
  * unsubscribe: the mailto half of List-Unsubscribe (RFC 2369); the token's account
    is opted out of promotional mail (R-MAIL-1, R-ACCT-5 (iii)). Whatever the message
    says, receiving it is the request.
  * bounces: the VERP envelope sender of customer mail. A DSN (RFC 3464) is read; a
    permanent failure (Action: failed, Status 5.x.x) counts against the token's
    delivery address (R-ACCT-5 (ii)); delays and transient failures are noted.
    Mail that is no DSN (an out-of-office reply) is accepted and ignored.
"""

from __future__ import annotations

import logging
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser

from bridge.core.component import ServiceRecipient
from bridge.core.db import Database
from bridge.inbound.accounts import BounceKind, Bounces, OptOuts

log = logging.getLogger("bridge.inbound.mail")

OK_UNSUBSCRIBED = "250 2.0.0 Unsubscribed: you will get no more news and offers from us"
OK_ALREADY_UNSUBSCRIBED = "250 2.0.0 Already unsubscribed"
OK_BOUNCE_RECORDED = "250 2.0.0 Delivery report recorded"
OK_NOT_A_BOUNCE = "250 2.0.0 Received"
ERR_550_UNKNOWN_TOKEN = "550 5.1.1 This unsubscribe address is not valid: use the link in a recent mail from us"
ERR_550_UNKNOWN_BOUNCE = "550 5.1.1 No such bounce address here"


class UnsubscribeMail:
    def __init__(self, db: Database, optouts: OptOuts) -> None:
        self.db = db
        self.optouts = optouts

    async def handle(self, recipient: ServiceRecipient, envelope_from: str, content: bytes) -> str:
        if not recipient.token:
            return ERR_550_UNKNOWN_TOKEN
        async with self.db.transaction() as tx:
            result = await self.optouts.unsubscribe(tx, recipient.token, via="mailto")
        if result is None:
            log.info("unsubscribe mail from %s with an unknown token", envelope_from or "<>")
            return ERR_550_UNKNOWN_TOKEN
        return OK_ALREADY_UNSUBSCRIBED if result.already else OK_UNSUBSCRIBED


class BounceMail:
    def __init__(self, db: Database, bounces: Bounces) -> None:
        self.db = db
        self.bounces = bounces

    async def handle(self, recipient: ServiceRecipient, envelope_from: str, content: bytes) -> str:
        if not recipient.token:
            return ERR_550_UNKNOWN_BOUNCE
        kind, status = classify_dsn(content)
        async with self.db.transaction() as tx:
            result = await self.bounces.record(tx, recipient.token, kind, status)
        if result is None:
            return ERR_550_UNKNOWN_BOUNCE
        if kind == "none":
            log.info("mail to the bounce address of account %s is no failure report; ignored", result.account_id)
            return OK_NOT_A_BOUNCE
        log.info("account %s: %s bounce for %s (%s)", result.account_id, kind, result.address, status)
        return OK_BOUNCE_RECORDED


def classify_dsn(content: bytes) -> tuple[BounceKind, str]:
    """("hard" | "soft" | "none", status text) of a delivery status notification."""
    message = BytesParser(policy=policy.default).parsebytes(content)
    report = _delivery_status(message)
    if report is None:
        return "none", ""
    worst: tuple[BounceKind, str] = ("none", "")
    for block in report:
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip()
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        described = f"{status} {diagnostic}".strip()
        if action == "failed" and status.startswith("5"):
            return "hard", described
        if action in ("failed", "delayed"):
            worst = ("soft", described)
    return worst


def _delivery_status(message: EmailMessage) -> list[Message] | None:
    """The per-recipient field blocks of a multipart/report DSN, or None."""
    if message.get_content_type() != "multipart/report":
        return None
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            if isinstance(payload, list):
                # The first block is about the message, the rest one per recipient.
                return [block for block in payload if isinstance(block, Message)][1:] or list(payload)
    return None
