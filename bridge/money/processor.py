"""The payment processor interface, and the offline processor faxbridge ships with.

Where it sits: behind `bridge.money.payments`, which writes every card charge as a
pending row before it calls the processor here, and records the answer after. Every
call carries an idempotency key: asking again with a key already used returns the
first answer and moves no money, which is what makes reconciliation after a crash
safe (R-DEP-10: charged once, recorded once).

`OfflineProcessor` is a DEVELOPMENT processor. It moves no real money and talks to no
bank: it keeps its own books in a small SQLite file (config
`money.offline_processor_path`), separate from faxbridge's database the way a real
processor's are, and answers the way well-known test card numbers do:

    4242424242424242  approves
    4000000000000002  declines ("card declined")
    4000000000009995  declines ("insufficient funds")
    4000000000000259  approves, then is charged back (reported by `disputes()`)

Any other number passing the Luhn check approves. Numbers are turned into tokens at
once (`tokenize`); only the token and the last four digits are kept, never the number.
A production processor implements `PaymentProcessor` with the same idempotency rules.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class ProcessorError(Exception):
    """The processor cannot do what was asked (bad card number, unknown token)."""


@dataclass(frozen=True)
class CardToken:
    token: str
    brand: str
    last4: str


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str
    decline_reason: str = ""


@dataclass(frozen=True)
class Dispute:
    """A chargeback: the card holder's bank took back a charge."""

    charge_reference: str
    amount_minor: int
    currency: str
    reason: str


class PaymentProcessor(Protocol):
    name: str

    async def tokenize(self, card: str) -> CardToken:
        """A token for a card number (or the same token, when given one)."""

    async def charge(
        self, token: str, amount_minor: int, currency: str, *, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Charge the card once per key: a repeated key returns the first result."""

    async def refund(
        self, charge_reference: str, amount_minor: int, currency: str, *, idempotency_key: str
    ) -> ChargeResult:
        """Give back (part of) a charge, once per key."""

    async def disputes(self) -> list[Dispute]:
        """Every chargeback so far (callers take each in once, by its charge reference)."""


# Behaviour of the well-known test numbers; anything else that passes Luhn approves.
_TEST_CARDS = {
    "4242424242424242": "approve",
    "4000000000000002": "decline",
    "4000000000009995": "insufficient",
    "4000000000000259": "chargeback",
}
_DECLINE_REASONS = {"decline": "card declined", "insufficient": "insufficient funds"}


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or number[:1] == "2":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


class OfflineProcessor:
    """The development processor (see the module docstring); never for real money."""

    name = "offline"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    # --- its own books: a separate SQLite file, used from a worker thread ----------------
    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        if not self._ready:
            connection.executescript(
                """
                CREATE TABLE IF NOT EXISTS tokens (
                    token TEXT PRIMARY KEY, behaviour TEXT NOT NULL, brand TEXT NOT NULL,
                    last4 TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS charges (
                    idempotency_key TEXT PRIMARY KEY, reference TEXT NOT NULL UNIQUE,
                    token TEXT NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
                    approved INTEGER NOT NULL, decline_reason TEXT NOT NULL,
                    disputed INTEGER NOT NULL, description TEXT NOT NULL, created_at TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS refunds (
                    idempotency_key TEXT PRIMARY KEY, reference TEXT NOT NULL UNIQUE,
                    charge_reference TEXT NOT NULL, amount_minor INTEGER NOT NULL,
                    created_at TEXT NOT NULL);
                """
            )
            self._ready = True
        return connection

    async def tokenize(self, card: str) -> CardToken:
        return await asyncio.to_thread(self._tokenize, card.replace(" ", "").replace("-", ""))

    def _tokenize(self, card: str) -> CardToken:
        connection = self._connect()
        try:
            if card.startswith("tok_"):
                row = connection.execute("SELECT brand, last4 FROM tokens WHERE token = ?", (card,)).fetchone()
                if row is None:
                    raise ProcessorError(f"unknown card token {card}")
                return CardToken(card, row[0], row[1])
            if not card.isdigit() or not 12 <= len(card) <= 19 or not luhn_ok(card):
                raise ProcessorError("not a card number (it fails the Luhn check)")
            behaviour = _TEST_CARDS.get(card, "approve")
            token = CardToken(f"tok_{secrets.token_hex(12)}", _brand(card), card[-4:])
            connection.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)", (token.token, behaviour, token.brand, token.last4)
            )
            return token
        finally:
            connection.close()

    async def charge(
        self, token: str, amount_minor: int, currency: str, *, idempotency_key: str, description: str
    ) -> ChargeResult:
        if amount_minor <= 0:
            raise ProcessorError("a charge must be of a positive amount")
        return await asyncio.to_thread(self._charge, token, amount_minor, currency, idempotency_key, description)

    def _charge(self, token: str, amount: int, currency: str, key: str, description: str) -> ChargeResult:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(
                "SELECT approved, reference, decline_reason FROM charges WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:  # the same request again: the first answer, no new charge
                connection.execute("COMMIT")
                return ChargeResult(bool(row[0]), row[1], row[2])
            found = connection.execute("SELECT behaviour FROM tokens WHERE token = ?", (token,)).fetchone()
            behaviour = found[0] if found else "unknown"
            approved = behaviour in ("approve", "chargeback")
            reason = "" if approved else _DECLINE_REASONS.get(behaviour, "unknown card token")
            reference = f"ch_{secrets.token_hex(10)}"
            connection.execute(
                "INSERT INTO charges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, reference, token, amount, currency, int(approved), reason,
                 int(behaviour == "chargeback"), description, datetime.now(UTC).isoformat()),
            )
            connection.execute("COMMIT")
            return ChargeResult(approved, reference, reason)
        finally:
            connection.close()

    async def refund(
        self, charge_reference: str, amount_minor: int, currency: str, *, idempotency_key: str
    ) -> ChargeResult:
        return await asyncio.to_thread(self._refund, charge_reference, amount_minor, idempotency_key)

    def _refund(self, charge_reference: str, amount: int, key: str) -> ChargeResult:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute("SELECT reference FROM refunds WHERE idempotency_key = ?", (key,)).fetchone()
            if row is not None:
                connection.execute("COMMIT")
                return ChargeResult(True, row[0])
            charged = connection.execute(
                "SELECT amount_minor FROM charges WHERE reference = ? AND approved = 1", (charge_reference,)
            ).fetchone()
            refunded = connection.execute(
                "SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE charge_reference = ?", (charge_reference,)
            ).fetchone()[0]
            if charged is None or refunded + amount > charged[0]:
                connection.execute("COMMIT")
                return ChargeResult(False, "", "refund exceeds the charge")
            reference = f"re_{secrets.token_hex(10)}"
            connection.execute(
                "INSERT INTO refunds VALUES (?, ?, ?, ?, ?)",
                (key, reference, charge_reference, amount, datetime.now(UTC).isoformat()),
            )
            connection.execute("COMMIT")
            return ChargeResult(True, reference)
        finally:
            connection.close()

    async def disputes(self) -> list[Dispute]:
        return await asyncio.to_thread(self._disputes)

    def _disputes(self) -> list[Dispute]:
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT reference, amount_minor, currency FROM charges"
                " WHERE disputed = 1 AND approved = 1 ORDER BY rowid"
            ).fetchall()
            return [Dispute(r[0], r[1], r[2], "the card holder disputed the charge") for r in rows]
        finally:
            connection.close()

    async def charges(self) -> list[tuple[str, int, bool]]:
        """(idempotency key, amount, approved) of every charge made: the processor's view,
        for operators and tests comparing it with the ledger."""

        def read() -> list[tuple[str, int, bool]]:
            connection = self._connect()
            try:
                return [(r[0], r[1], bool(r[2])) for r in connection.execute(
                    "SELECT idempotency_key, amount_minor, approved FROM charges ORDER BY rowid")]
            finally:
                connection.close()

        return await asyncio.to_thread(read)


def build_processor(path: Path, name: str = "offline") -> PaymentProcessor:
    """The processor config names (only the offline one so far)."""
    if name != "offline":
        raise ValueError(f"unknown payment processor {name!r}")
    return OfflineProcessor(path)
