"""Accounts as the front door and the CLI see them: who may send, PINs, registration.

Where it sits: the SMTP front door asks `SenderCheck` at DATA whether the envelope
sender and the From: header belong to one active account (R-ACCT-3) and verifies AUTH
logins (address + PIN); the `authenticate` step asks again when the job is processed,
since an account can be suspended in between; `faxbridge account ...` creates and shows
accounts. Plans and money are issue 5's; this module only records the plan's name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account, AccountAddress
from bridge.core.db import Database
from bridge.core.refusal import Refusal

MAX_SENDER_ADDRESSES = 5
MAX_DELIVERY_ADDRESSES = 5

# R-ACCT-2: PINs are kept only as slow salted hashes. scrypt with n=2**14, r=8 takes
# ~50 ms and 16 MiB here: slow for a guesser, cheap enough for one AUTH.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_pin(pin: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    salt64, digest64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt64}${digest64}"


def verify_pin(pin: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def normalise_address(address: str) -> str:
    """Addresses are compared case-insensitively (in practice every provider does)."""
    return address.strip().strip("<>").lower()


class AccountError(Exception):
    """An account operation that cannot be done; the message says why."""


async def create_account(
    tx: AsyncSession,
    *,
    senders: Sequence[str],
    plan: str,
    name: str = "",
    deliveries: Sequence[str] = (),
    pin: str | None = None,
) -> Account:
    """Register an account; its sender addresses also receive its mail unless
    delivery addresses are given."""
    senders = [normalise_address(a) for a in senders]
    deliveries = [normalise_address(a) for a in deliveries] or list(senders)
    if not senders:
        raise AccountError("an account needs at least one sender address")
    if len(senders) > MAX_SENDER_ADDRESSES or len(deliveries) > MAX_DELIVERY_ADDRESSES:
        raise AccountError(
            f"an account has at most {MAX_SENDER_ADDRESSES} sender and"
            f" {MAX_DELIVERY_ADDRESSES} delivery addresses"
        )
    for address in senders + deliveries:
        _check_address_syntax(address)
    taken = await tx.scalars(
        select(AccountAddress.address).where(
            AccountAddress.kind == "sender", AccountAddress.address.in_(senders)
        )
    )
    taken_list = sorted(set(taken))
    if taken_list:
        raise AccountError(f"already registered to an account: {', '.join(taken_list)}")
    pin_hash = await asyncio.to_thread(hash_pin, pin) if pin else None
    account = Account(name=name, plan=plan, state="active", pin_hash=pin_hash)
    account.addresses = [AccountAddress(address=a, kind="sender") for a in senders] + [
        AccountAddress(address=a, kind="delivery") for a in deliveries
    ]
    tx.add(account)
    await tx.flush()
    return account


def _check_address_syntax(address: str) -> None:
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError) as error:
        raise AccountError(f"{address!r} is not an email address: {error}") from None
    if "@" not in address:
        raise AccountError(f"{address!r} is not an email address")


async def account_for_sender(session: AsyncSession, address: str) -> Account | None:
    return await session.scalar(
        select(Account)
        .join(AccountAddress)
        .where(AccountAddress.kind == "sender", AccountAddress.address == normalise_address(address))
    )


class SenderRefused(Refusal):
    """The sender may not fax; `reason` is the sentence the customer reads."""

    default_rule = "R-ACCT-3"


@dataclass(frozen=True)
class SenderIdentity:
    account_id: int
    account_name: str
    envelope_from: str
    from_header: str


class SenderCheck:
    """R-ACCT-3: only the customer's registered addresses may send faxes.

    First form: the envelope sender and the single From: address must both be registered
    sender addresses of one active account, and an AUTH login, if any, must belong to it.
    DKIM/SPF/DMARC alignment (a later issue) joins here.

    The answer for one (sender, From:, login) is remembered for `cache_seconds`: a
    customer's mail program often sends several faxes in a row, and the check is one of
    the costs of every message at DATA. A suspension made in that window still stops
    the fax, because the pipeline's `authenticate` step asks again with no cache.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 0) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, str | None], tuple[float, SenderIdentity]] = {}
        # Checks under way, so that sessions arriving together ask the database once.
        self._asking: dict[tuple[str, str, str | None], asyncio.Future[SenderIdentity]] = {}

    async def check(
        self, envelope_from: str, from_header: str | None, auth_login: str | None = None
    ) -> SenderIdentity:
        if not envelope_from:
            raise SenderRefused("Messages with an empty sender (bounces) cannot be faxed.")
        from_address = parse_single_from(from_header)
        key = (
            normalise_address(envelope_from), normalise_address(from_address),
            auth_login and normalise_address(auth_login),
        )
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        if not self.cache_seconds:
            return await self._check(envelope_from, from_address, auth_login)
        asking = self._asking.get(key)
        if asking is not None:
            return await asyncio.shield(asking)
        asking = self._asking[key] = asyncio.get_running_loop().create_future()
        try:
            identity = await self._check(envelope_from, from_address, auth_login)
        except Exception as error:
            asking.set_exception(error)
            asking.exception()  # marked retrieved: the waiters re-raise it themselves
            raise
        except BaseException:
            asking.cancel()
            raise
        else:
            asking.set_result(identity)
        finally:
            del self._asking[key]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, identity)
        return identity

    async def _check(self, envelope_from: str, from_address: str, auth_login: str | None) -> SenderIdentity:
        wanted = {normalise_address(envelope_from), normalise_address(from_address)}
        if auth_login is not None:
            wanted.add(normalise_address(auth_login))
        async with self.db.reading() as session:
            rows = (
                await session.execute(
                    select(AccountAddress.address, Account.id, Account.state, Account.name)
                    .join(Account, Account.id == AccountAddress.account_id)
                    .where(AccountAddress.kind == "sender", AccountAddress.address.in_(wanted))
                )
            ).all()
        owner = {address: (account_id, state, name) for address, account_id, state, name in rows}
        sender = owner.get(normalise_address(envelope_from))
        if sender is None:
            raise SenderRefused(
                f"The sender {envelope_from} is not registered with this fax service."
                " Send from the address registered on your account, or sign up first."
            )
        account_id, state, name = sender
        from_owner = owner.get(normalise_address(from_address))
        if from_owner is None or from_owner[0] != account_id:
            raise SenderRefused(
                f"The From: address {from_address} is not a registered address of the"
                f" account that {envelope_from} belongs to. Send with a From: address"
                " registered on your account."
            )
        if auth_login is not None:
            login_owner = owner.get(normalise_address(auth_login))
            if login_owner is None or login_owner[0] != account_id:
                raise SenderRefused(
                    f"You are logged in as {auth_login}, which may not send for"
                    f" {envelope_from}."
                )
        if state != "active":
            raise SenderRefused(
                f"The account of {envelope_from} is {state}; faxes cannot be"
                " sent from it. Reply to your last account notice or contact support.",
                rule="R-DEP-8" if state == "suspended" else "R-ACCT-4",
            )
        return SenderIdentity(account_id, name, envelope_from, from_address)


def parse_single_from(from_header: str | None) -> str:
    """The one address in a From: header, or SenderRefused saying what is wrong."""
    if not from_header:
        raise SenderRefused(
            "The message has no From: header. Send it from your mail program as usual."
        )
    pairs = [pair for pair in getaddresses([from_header]) if pair[1]]
    if len(pairs) != 1 or "@" not in pairs[0][1]:
        raise SenderRefused(
            "The From: header must name exactly one address, the one registered on your"
            " account."
        )
    return pairs[0][1]


async def login_matches(db: Database, login: str, pin: str) -> bool:
    """True when `login` is a sender address of an active account whose PIN is `pin`."""
    async with db.reading() as session:
        account = await account_for_sender(session, login)
        stored = account.pin_hash if account and account.state == "active" else None
    if stored is None:
        # Spend the same time as a real check so a guesser learns nothing from timing.
        await asyncio.to_thread(hash_pin, pin)
        return False
    return await asyncio.to_thread(verify_pin, pin, stored)

async def existing_account(db: Database, account_id: int) -> Account:
    """The account with this id, or AccountError: for every command that takes one."""
    async with db.reading() as session:
        account = await session.get(Account, account_id)
    if account is None:
        raise AccountError(f"no account {account_id}")
    return account
