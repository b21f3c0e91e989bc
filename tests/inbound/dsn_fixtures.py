"""Delivery status notifications (RFC 3464) of every kind the bounce address meets,
as receiving mail systems send them to `bounces+TOKEN@` (R-ACCT-5 (ii)).

Each fixture is one per-recipient block (Action, Status, Diagnostic-Code) and the kind
faxbridge must read it as: "hard" marks the address failing, "soft" is counted and
changes nothing else, "none" is no failure at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support import FAX_DOMAIN


@dataclass(frozen=True)
class Dsn:
    action: str
    status: str
    diagnostic: str
    kind: str  # what classify_dsn must say: hard | soft | none


# Permanent: the mailbox does not exist.
HARD_USER_UNKNOWN = Dsn("failed", "5.1.1", "550 5.1.1 <x>: Recipient address rejected: User unknown", "hard")
# Permanent: the receiver blocks or filters our mail (R-ACCT-5 (ii) "blocked or filtered").
HARD_BLOCKED_AS_SPAM = Dsn("failed", "5.7.1", "554 5.7.1 Message rejected as spam by content filter", "hard")
# Permanent: the receiving domain does not exist.
HARD_NO_SUCH_DOMAIN = Dsn("failed", "5.1.2", "Host or domain name not found. Name service error", "hard")
# Permanent by its status even though the words sound temporary (mailbox full, 5.2.2).
HARD_MAILBOX_FULL_PERMANENT = Dsn("failed", "5.2.2", "552 5.2.2 Mailbox full and not accepting mail", "hard")
# Transient failure: the sending MTA gave up, but the status says it was temporary.
SOFT_GAVE_UP_ON_TIMEOUT = Dsn("failed", "4.4.7", "Delivery time expired", "soft")
# Delayed: still being retried ("warning" DSN).
DELAYED_MAILBOX_FULL = Dsn("delayed", "4.2.2", "452 4.2.2 Mailbox full", "soft")
DELAYED_GREYLISTED = Dsn("delayed", "4.7.1", "451 4.7.1 Greylisted, try again in 5 minutes", "soft")
# Success notices (NOTIFY=SUCCESS, or relayed to a system without DSN): not failures.
DELIVERED = Dsn("delivered", "2.0.0", "250 2.0.0 OK", "none")
RELAYED = Dsn("relayed", "2.0.0", "250 2.0.0 relayed to a non-DSN-aware mailer", "none")
EXPANDED = Dsn("expanded", "2.0.0", "250 2.0.0 delivered to a mailing list", "none")

ALL = {
    "hard, user unknown": HARD_USER_UNKNOWN,
    "hard, blocked as spam": HARD_BLOCKED_AS_SPAM,
    "hard, no such domain": HARD_NO_SUCH_DOMAIN,
    "hard, mailbox full (5.2.2)": HARD_MAILBOX_FULL_PERMANENT,
    "soft, gave up (4.4.7)": SOFT_GAVE_UP_ON_TIMEOUT,
    "delayed, mailbox full": DELAYED_MAILBOX_FULL,
    "delayed, greylisted": DELAYED_GREYLISTED,
    "delivered": DELIVERED,
    "relayed": RELAYED,
    "expanded": EXPANDED,
}

# Not DSNs at all: an out-of-office reply, and a plain-text "bounce" from a broken
# mailer that is no multipart/report. Both are accepted and change nothing.
AUTO_REPLY = (
    b"From: fred@example.com\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\n"
    b"I am away until Monday.\r\n"
)
PLAIN_TEXT_BOUNCE = (
    b"From: MAILER-DAEMON@old.example.net\r\nSubject: failure notice\r\n\r\n"
    b"Sorry, I couldn't deliver your message to <x@old.example.net>.\r\n"
)


def dsn(recipient: str, *blocks: Dsn, recipients: list[str] | None = None) -> bytes:
    """A multipart/report DSN with one per-recipient block per `blocks` (all for
    `recipient` unless `recipients` names each)."""
    names = recipients or [recipient] * len(blocks)
    per_recipient = "\n".join(
        f"Final-Recipient: rfc822; {name}\nOriginal-Recipient: rfc822;{name}\nAction: {block.action}\n"
        f"Status: {block.status}\nDiagnostic-Code: smtp; {block.diagnostic}\n"
        for name, block in zip(names, blocks, strict=True)
    )
    return f"""From: MAILER-DAEMON@mx.example.com
To: bounces@{FAX_DOMAIN}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

This is the mail system at host mx.example.com. Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon, 23 Nov 2026 12:00:00 +0000

{per_recipient}
--B
Content-Type: text/rfc822-headers

From: faxbridge <noreply@{FAX_DOMAIN}>
Subject: Fax from +15550100777, 1 page

--B--
""".replace("\n", "\r\n").encode()
