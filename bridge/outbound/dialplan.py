"""Numbers faxbridge will not dial, whoever asks.

Where it sits: the SMTP front door refuses them at RCPT (550 5.1.3, the sender knows at
once) and the call runner checks again before dialling (a number may have been queued
before the list changed). A refused number is never dialled and never billed.

What is refused: the prefixes in `transmit.blocked_prefixes` (by default NANP
premium/pay-per-call 900 and 976, N11 and 988 used as area codes, UK 09 premium, 118
directory enquiries and 070 personal numbering) and, with `transmit.block_premium_rate`,
any number `phonenumbers` classifies as premium rate. Emergency short codes (911, 112,
999, 988) are too short to be fax numbers at all: the recipient grammar refuses them.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

from bridge.outbound.settings import TransmitSettings


class DialPlan:
    def __init__(self, settings: TransmitSettings) -> None:
        self.blocked_prefixes = tuple(settings.blocked_prefixes)
        self.block_premium_rate = settings.block_premium_rate

    def refusal(self, e164: str) -> str | None:
        """Why `e164` must not be dialled, in words for the sender; None if it may be."""
        if e164.startswith(self.blocked_prefixes):
            return "it is a premium-rate, pay-per-call or special-service number, which no fax service may dial"
        if self.block_premium_rate:
            try:
                number = phonenumbers.parse(e164, None)
            except phonenumbers.NumberParseException:
                return None
            if phonenumbers.number_type(number) == PhoneNumberType.PREMIUM_RATE:
                return "it is a premium-rate number, which no fax service may dial"
        return None
