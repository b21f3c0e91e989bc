"""The words money mails to customers: declined charges, suspensions, fair use.

Where it sits: the billing cycle builds these and hands them to the outbox inside the
transaction that made the decision, so a notice is sent exactly when the change it
tells of is committed. They are service notices (R-MAIL-2): no opt-out link. Amounts
are shown exactly as charged, formatted by `Money`.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import TYPE_CHECKING

from bridge.accounts.models import Account

if TYPE_CHECKING:
    from bridge.settings import Settings


class MoneyNotices:
    def __init__(self, settings: Settings) -> None:
        self.service = settings.service

    def _message(self, account: Account, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.service.notices_from
        message["To"] = ", ".join(account.delivery_addresses() or account.sender_addresses())
        message["Subject"] = subject
        message["Auto-Submitted"] = "auto-generated"
        signature = f"\n-- \n{self.service.name}\n{self.service.postal_address}\n"
        footer = (f"\nAccount {account.id}. This is a service notice about your account;"
                  " it is sent to every customer it concerns.\n")
        message.set_content("Hello,\n\n" + body.rstrip() + "\n" + footer + signature)
        return message

    def fee_paid_from_deposit(self, account: Account, *, fee: str, reason: str, last4: str) -> EmailMessage:
        """R-DEP-5, R-DEP-8: the card declined the fee; the deposit paid it."""
        return self._message(
            account,
            "Your card was declined: fee paid from your deposit",
            f"We could not charge your fee of {fee} to your card ending {last4} ({reason}).\n"
            "We paid the fee from your prepaid deposit instead, so your service goes on.\n"
            "Please update your card: once it can be charged, we charge it the same amount\n"
            "to restore your deposit.",
        )

    def suspended(self, account: Account, *, what: str, reason: str) -> EmailMessage:
        """R-DEP-8: a declined charge that could not be covered, or a chargeback."""
        return self._message(
            account,
            "Your fax account is suspended",
            f"{what} ({reason}).\n"
            "Your account is suspended: faxes you send are not transmitted until it is\n"
            "settled. Please update your card and contact support to reactivate it.",
        )

    def charge_declined(self, account: Account, *, amount: str, purpose: str, reason: str, last4: str) -> EmailMessage:
        """R-DEP-8: a failed charge is told to the customer."""
        return self._message(
            account,
            "Your card was declined",
            f"We could not charge {amount} ({purpose}) to your card ending {last4} ({reason}).\n"
            "Please update your card so that your deposit can be topped up.",
        )

    def fair_use_free(self, account: Account, *, units: int, limit: int, days: int, upgrade: str) -> EmailMessage:
        """R-USE-4: a Free account received more than its fair share; offer the upgrade."""
        return self._message(
            account,
            "Your free fax number is over its fair-use limit",
            f"Your free fax number received {units} pages in the last {days} days; fair use of a\n"
            f"free number is at most {limit} pages in any {days} days. Upgrade to the\n"
            f"{upgrade.capitalize()} plan to receive as many faxes as you need. If the volume goes on\n"
            "without an upgrade, we may suspend the free account.",
        )

    def overage(self, account: Account, *, units: int, line: str, new_units: int, amount: str, rate: str,
                days: int, upgrade: str) -> EmailMessage:
        """R-USE-5, R-USE-6: usage above the fair-use line, charged as overage."""
        offer = (f"\nThe {upgrade.capitalize()} plan has a larger fair-use allowance; upgrade to avoid"
                 " overage charges.\n") if upgrade else ""
        return self._message(
            account,
            "Fair-use overage charged",
            f"Your account used {units} units in the last {days} days, above its fair-use line of\n"
            f"{line} units. We charged {new_units} unit(s) of overage at {rate} each: {amount},\n"
            f"taken from your deposit.\n{offer}",
        )
