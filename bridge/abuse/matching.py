"""Finding phone numbers in a report and telling the service's own from the rest.

Where it sits: the match step (handlers/abuse_match.py). `NumberFinder` runs
`phonenumbers.PhoneNumberMatcher` over each text of the report once per region the
service sells numbers in (config `abuse.regions`), and reads fax addresses of the
service's own domains (`<number>@<fax domain>`, the recipient grammar of
bridge.smtp.recipients). `holders()` looks the E.164 numbers up in the inventory
(FaxNumber, R-NUM-1): whose they are decides the case (R-ABUSE-3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import (
    Leniency,
    PhoneNumberFormat,
    PhoneNumberMatcher,
    ValidationResult,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import FaxNumber
from bridge.smtp.recipients import FaxRecipient, RecipientGrammar, RecipientRefused


@dataclass(frozen=True)
class FoundNumber:
    e164: str
    where: str  # which text of the report: "fax header", "reported message", ...
    line: str  # the line it was written on, for the evidence


@dataclass(frozen=True)
class NumberHolder:
    e164: str
    number_id: int
    account_id: int | None  # None: ours, but not licensed to anyone now
    state: str


class NumberFinder:
    def __init__(
        self, regions: Sequence[str], fax_domains: Iterable[str], default_region: str, *, max_numbers: int
    ) -> None:
        self.regions = tuple(regions)
        self.grammar = RecipientGrammar(tuple(fax_domains), default_region)
        self.max_numbers = max_numbers
        domains = "|".join(re.escape(d) for d in self.grammar.fax_domains)
        # A fax address of ours: the local part the grammar accepts, at one of our domains.
        self._fax_address = re.compile(rf"(?<![\w.+=/-])([\w.+=/-]{{1,64}})@({domains})\b", re.I)

    def find(self, texts: Sequence[tuple[str, str]]) -> list[FoundNumber]:
        """Every distinct number in the texts, in order of first appearance."""
        found: dict[str, FoundNumber] = {}
        for where, text in texts:
            for e164, start, end in self._in_text(text):
                if e164 not in found:
                    found[e164] = FoundNumber(e164, where, _line_around(text, start, end))
                if len(found) >= self.max_numbers:
                    return list(found.values())
        return list(found.values())

    def _in_text(self, text: str) -> list[tuple[str, int, int]]:
        hits: list[tuple[str, int, int]] = []
        for match in self._fax_address.finditer(text):
            address = f"{match[1]}@{match[2]}"
            try:
                recipient = self.grammar.resolve(address)
            except RecipientRefused:
                continue
            if isinstance(recipient, FaxRecipient):
                hits.append((recipient.e164, match.start(), match.end()))
        for region in self.regions:
            # POSSIBLE, not VALID: numbers in the fictional 555 ranges are real to us
            # when they are in the inventory; anything else is only recorded.
            for phone in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE, max_tries=200):
                number = phone.number
                if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
                    continue
                hits.append((phonenumbers.format_number(number, PhoneNumberFormat.E164), phone.start, phone.end))
        hits.sort(key=lambda hit: hit[1])
        return hits


async def holders(session: AsyncSession, numbers: Iterable[str]) -> dict[str, NumberHolder]:
    """The inventory rows of those numbers that are the service's."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    rows = (await session.scalars(select(FaxNumber).where(FaxNumber.e164.in_(wanted)))).all()
    return {row.e164: NumberHolder(row.e164, row.id, row.account_id, row.state) for row in rows}


def _line_around(text: str, start: int, end: int) -> str:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : line_end if line_end != -1 else len(text)].strip()
    return line[:300]
