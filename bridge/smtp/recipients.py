"""The recipient grammar: what an RCPT TO address means, decided at RCPT time.

Where it sits: the SMTP front door calls `RecipientGrammar.resolve()` for every RCPT TO;
the answer is a `FaxRecipient` (a number to fax), a `ServiceRecipient` (signup@,
abuse@, unsubscribe+TOKEN@, ... served by a handler from a later stage), or a
`RecipientRefused` carrying the SMTP reply.

Accepted forms at a fax domain (config `service.fax_domains`):
  * `<number>@domain`: digits with an optional leading `+` or `00`; `-` and `.` may
    separate groups (`+1-212-555-0100`, `0044.20.7946.0000`). A number with neither
    prefix is read in `service.default_region`.
  * RFC 3192 `FAX=+<number>@domain`, with an optional `/T33S=<subaddress>` (kept, not
    dialled: the virtual line has no sub-addressing).
  * the service addresses the components declare (bridge.core.component.ServiceAddress:
    `unsubscribe+TOKEN@`, `bounces+TOKEN@`, ...); any other local part is refused like
    an unknown address (550 5.1.1).
Any other domain is refused with 550 5.7.1 Relay access denied: faxbridge is never an
open relay. Numbers are normalised to E.164 with `phonenumbers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import phonenumbers
from phonenumbers import ValidationResult

from bridge.core.component import ServiceRecipient
from bridge.smtp import statuses

# How many distinct RCPT addresses resolve() remembers before it starts afresh.
ANSWER_CACHE_SIZE = 10_000

_NUMBER = re.compile(r"^(?P<prefix>\+|00)?(?P<body>[0-9](?:[0-9.\-]*[0-9])?)$")
_RFC3192 = re.compile(r"^fax=(?P<number>\+[0-9.\-]+)(?:/t33s=(?P<sub>[0-9]+))?$", re.I)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

_POSSIBILITY_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "the country code does not exist",
    ValidationResult.TOO_SHORT: "it has too few digits",
    ValidationResult.TOO_LONG: "it has too many digits",
    ValidationResult.INVALID_LENGTH: "it has the wrong number of digits for its country",
}


@dataclass(frozen=True)
class FaxRecipient:
    address: str
    e164: str
    subaddress: str | None = None


Recipient = FaxRecipient | ServiceRecipient


class RecipientRefused(Exception):
    """The address is refused; `status` is the full SMTP reply."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class RecipientGrammar:
    """Reads RCPT TO addresses against the fax domains and the built service routes."""

    def __init__(
        self,
        fax_domains: Collection[str],
        default_region: str,
        served_routes: Mapping[str, bool] | None = None,
        refuse_number: Callable[[str], str | None] | None = None,
    ) -> None:
        self.fax_domains = frozenset(d.lower() for d in fax_domains)
        self.default_region = default_region
        # local part -> whether it takes a +TOKEN (bridge.core.component.ServiceAddress)
        self.served_routes = dict(served_routes or {})
        # The dial plan's veto (bridge.outbound.dialplan): a reason, or None to accept.
        self.refuse_number = refuse_number
        self._answers: dict[str, Recipient | RecipientRefused] = {}

    def resolve(self, address: str) -> Recipient:
        """What `address` means, or RecipientRefused. Answers are remembered (bounded):
        the same numbers come again and again, and phonenumbers costs ~0.3 ms a number."""
        cached = self._answers.get(address)
        if cached is None:
            try:
                cached = self._resolve(address)
            except RecipientRefused as refusal:
                cached = refusal
            if len(self._answers) >= ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[address] = cached
        if isinstance(cached, RecipientRefused):
            raise RecipientRefused(cached.status)
        return cached

    def _resolve(self, address: str) -> Recipient:
        local, at, domain = address.rpartition("@")
        if not at or not local:
            raise RecipientRefused(statuses.ERR_550_BAD_ADDRESS.format(address=address))
        if domain.lower().rstrip(".") not in self.fax_domains:
            raise RecipientRefused(statuses.ERR_550_RELAY_DENIED)
        if local.startswith('"') and local.endswith('"') and len(local) >= 2:
            local = local[1:-1]

        fax = _RFC3192.match(local)
        if fax:
            return self._dialable(FaxRecipient(address, self.normalise(address, fax["number"]), fax["sub"]))
        if _NUMBER.match(local):
            return self._dialable(FaxRecipient(address, self.normalise(address, local)))
        return self._service(address, local)

    def _dialable(self, recipient: FaxRecipient) -> FaxRecipient:
        reason = self.refuse_number(recipient.e164) if self.refuse_number else None
        if reason:
            raise RecipientRefused(
                statuses.ERR_550_BAD_NUMBER.format(address=recipient.address, reason=reason)
            )
        return recipient

    def normalise(self, address: str, written: str) -> str:
        """E.164 form of a written number, or RecipientRefused with the reason."""
        match = _NUMBER.match(written)
        if not match:
            raise RecipientRefused(
                statuses.ERR_550_BAD_NUMBER.format(
                    address=address, reason="only digits, '+', '-' and '.' may be used"
                )
            )
        digits = match["body"].replace("-", "").replace(".", "")
        international = match["prefix"] is not None
        text = f"+{digits}" if international else digits
        region = None if international else self.default_region
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as error:
            raise RecipientRefused(
                statuses.ERR_550_BAD_NUMBER.format(address=address, reason=_parse_reason(error))
            ) from None
        possibility = phonenumbers.is_possible_number_with_reason(number)
        if possibility not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
            reason = _POSSIBILITY_REASONS.get(possibility, "it cannot be a phone number")
            raise RecipientRefused(
                statuses.ERR_550_BAD_NUMBER.format(address=address, reason=reason)
            )
        if possibility == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
            raise RecipientRefused(
                statuses.ERR_550_BAD_NUMBER.format(
                    address=address, reason="it lacks an area code; write it with one"
                )
            )
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def _service(self, address: str, local: str) -> ServiceRecipient:
        name, plus, _ = local.lower().partition("+")
        takes_token = self.served_routes.get(name)
        unknown = statuses.ERR_550_UNKNOWN_ADDRESS.format(address=address)
        if takes_token is None:
            raise RecipientRefused(unknown)
        if takes_token:
            original_token = local.partition("+")[2]
            if not plus or not _TOKEN.match(original_token):
                raise RecipientRefused(unknown)
            return ServiceRecipient(address, name, original_token)
        if plus:
            raise RecipientRefused(unknown)
        return ServiceRecipient(address, name)


def _parse_reason(error: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "the country code does not exist",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "it has too few digits",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "it has too few digits",
        phonenumbers.NumberParseException.TOO_LONG: "it has too many digits",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    }
    return reasons.get(error.error_type, "it is not a phone number")
