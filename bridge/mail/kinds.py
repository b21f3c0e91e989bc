"""Every kind of mail the service sends: the registry the outbox checks.

Where it sits: whoever tells someone something (a step, a runner, the billing cycle,
the abuse desk) hands the outbox a message and one of these kinds
(`Outbox.enqueue(tx, message, kind=MailKind.RECEIPT)`); the kind travels with the
`mail` job (bridge.mail.jobs.OutgoingMail) to the logs and `jobs show`. The DKIM and
SpamAssassin tests (tests/inbound/outgoing.py) make a sample of every member through
its real code path, so a new kind of mail is not sent before it has been checked.

The value is stored in each queued mail's payload: a value is never renamed or
removed while mail of that kind may still be queued.
"""

from __future__ import annotations

from enum import StrEnum


class MailKind(StrEnum):
    # --- outbound faxes (bridge.outbound) ---------------------------------------------
    # A submission the intake refused, with the reason and what to do (R-DEP-9, R-ACCT-3).
    REJECTION = "rejection"
    # How sending a fax to each number ended, with its preview and cost (R-USE-2, R-USE-3).
    RECEIPT = "receipt"

    # --- inbound faxes and the account's mail (bridge.inbound) ------------------------
    # A received fax, delivered as an attachment, maybe with promotion (R-MAIL-3, R-MAIL-1).
    INBOUND_FAX = "inbound-fax"
    # A Free account closed itself: idle, bounced or opted out (R-ACCT-5, R-MAIL-2).
    ACCOUNT_CLOSED = "account-closed"
    # One delivery address refuses our mail; told to the others (R-ACCT-5 (ii), R-MAIL-2).
    ADDRESS_FAILING = "address-failing"
    # A service announcement: maintenance, price or agreement changes (R-MAIL-2, R-MAIL-4).
    ANNOUNCEMENT = "announcement"

    # --- money (bridge.money) ---------------------------------------------------------
    # The card declined the fee; the deposit paid it until the card works (R-DEP-5, R-DEP-8).
    FEE_DECLINED = "fee-declined"
    # The card declined a deposit or a top-up (R-DEP-8).
    CHARGE_DECLINED = "charge-declined"
    # Suspended after a declined charge or a chargeback (R-DEP-8).
    ACCOUNT_SUSPENDED = "account-suspended"
    # A Free account over its fair-use limit, offered the upgrade (R-USE-4).
    FAIR_USE = "fair-use"
    # Usage beyond the fair-use line, charged as overage (R-USE-5, R-USE-6).
    FAIR_USE_OVERAGE = "fair-use-overage"

    # --- the abuse desk (bridge.abuse) -------------------------------------------------
    # To the reporter: what we found and what happens next (R-ABUSE-2, R-ABUSE-3).
    ABUSE_ACK = "abuse-ack"
    # To the account holder: a report names their number, with the evidence (R-ABUSE-3).
    ABUSE_NOTICE = "abuse-notice"
    # To the account holder: enough reporters, sending and numbers suspended (R-ABUSE-3).
    ABUSE_SUSPENSION = "abuse-suspension"
