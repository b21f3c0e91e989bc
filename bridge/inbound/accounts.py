"""Mail tokens and the account changes customers' mail causes: opting out of
promotional mail (R-MAIL-1, R-ACCT-5 (iii)) and bounces (R-ACCT-5 (ii)).

Where it sits: the `decorate` and `deliver` steps see each account through an
`AccountView` (state, footer choice, delivery addresses, and the tokens for the
List-Unsubscribe links and the VERP envelope sender), loaded per batch; the HTTP endpoint
(bridge/http.py) and the `unsubscribe+TOKEN@` handler call `OptOuts.unsubscribe`;
the `bounces+TOKEN@` handler calls `Bounces.record`. Each change is one transaction,
written with its event (and notice) before the caller answers 200 or 250.

Tokens: 160 random bits (secrets), hex so that a mail system that lower-cases local
parts cannot break them; each is bound to one account (and, for bounces, to one
delivery address, so a DSN that names no recipient still says who bounced).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts import state as account_state
from bridge.accounts.models import Account, AccountAddress
from bridge.core.db import Database
from bridge.core.models import utcnow
from bridge.inbound.messages import account_notice
from bridge.inbound.models import DeliveryHealth, MailEvent, MailToken
from bridge.mail.kinds import MailKind
from bridge.mail.outbox import Outbox

if TYPE_CHECKING:
    from bridge.settings import Settings

log = logging.getLogger("bridge.inbound.accounts")

Purpose = Literal["unsubscribe", "bounce"]


def new_token() -> str:
    return secrets.token_hex(20)


async def token_for(tx: AsyncSession, purpose: Purpose, account_id: int, address: str = "") -> str:
    """The account's (and address's) token for `purpose`, made on first use."""
    existing = await tx.scalar(
        select(MailToken.token).where(
            MailToken.purpose == purpose, MailToken.account_id == account_id, MailToken.address == address
        )
    )
    if existing is not None:
        return existing
    token = new_token()
    tx.add(MailToken(token=token, purpose=purpose, account_id=account_id, address=address))
    await tx.flush()
    return token


async def owner_of(tx: AsyncSession, purpose: Purpose, token: str) -> MailToken | None:
    return await tx.scalar(
        select(MailToken).where(MailToken.token == token.strip().lower(), MailToken.purpose == purpose)
    )


def verp_sender(settings: Settings, token: str) -> str:
    """The envelope sender of customer mail: bounces come back to `bounces+TOKEN@`."""
    return f"bounces+{token}@{settings.service.primary_domain}"


async def close_account(tx: AsyncSession, account: Account, *, via: str, reason: str) -> None:
    """Close the account (R-ACCT-5); the retention purge removes its documents (R-STORE-2)."""
    await account_state.close(tx, account, by="inbound", reason=f"{reason}, via {via}", rule="R-ACCT-5")
    tx.add(MailEvent(account_id=account.id, kind="closed", via=via, detail=reason))
    log.info("account %s closed: %s", account.id, reason)


def closing_notice(settings: Settings, account: Account, *, why: str, what_next: str) -> EmailMessage:
    """The account notice (R-MAIL-2) telling a customer their account closed itself
    (R-ACCT-5): `why` opens it, `what_next` ends it; the middle is the same for all."""
    service = settings.service
    numbers = ", ".join(n.e164 for n in account.numbers) or "your fax number"
    body = (
        f"Hello,\n\n{why.rstrip()}\n\n"
        f"Your {service.name} account (number {numbers}) is now closed: faxes to it are no\n"
        "longer delivered, and the faxes we kept for you will be deleted.\n\n"
        f"{what_next.rstrip()}\n"
    )
    to = account.delivery_addresses() or account.sender_addresses()
    return account_notice(settings, to=to, subject=f"Your {service.name} account is closed", body=body)


@dataclass(frozen=True)
class OptOutResult:
    account_id: int
    already: bool
    closed: bool


class OptOuts:
    """R-MAIL-1: a customer opts out of promotional mail (one click or one mail)."""

    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    async def unsubscribe(self, tx: AsyncSession, token: str, *, via: str) -> OptOutResult | None:
        """Opt the token's account out; None for a token that is not ours."""
        owner = await owner_of(tx, "unsubscribe", token)
        if owner is None:
            return None
        account = await tx.get(Account, owner.account_id)
        if account is None:
            return None
        if not account.promo_opt_in or account.state == "closed":
            return OptOutResult(account.id, already=True, closed=account.state == "closed")
        account.promo_opt_in = False
        tx.add(MailEvent(account_id=account.id, kind="opt-out", via=via))
        closed = account.plan in self.settings.inbound.close_on_opt_out
        if closed:
            # R-ACCT-5 (iii): a Free account that opts out is closed, and told so.
            await close_account(tx, account, via=via, reason="opted out of promotional mail (R-ACCT-5 (iii))")
            notice = closing_notice(
                self.settings, account,
                why=f"You asked us to stop sending you news and offers from {self.settings.service.name}.\n"
                    "We have done so. Free accounts come with that mail, so, as our terms say,\n"
                    "your free account closes.",
                what_next="If you want to keep a fax number without news and offers, sign up for a paid plan.",
            )
            await self.outbox.enqueue(tx, notice, kind=MailKind.ACCOUNT_CLOSED)
        log.info("account %s opted out of promotional mail via %s%s", account.id, via, "; closed" if closed else "")
        return OptOutResult(account.id, already=False, closed=closed)


BounceKind = Literal["hard", "soft", "none"]


@dataclass(frozen=True)
class BounceResult:
    account_id: int
    address: str
    kind: BounceKind
    failing: bool
    closed: bool


class Bounces:
    """R-ACCT-5 (ii): mail to a delivery address that bounces."""

    def __init__(self, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox

    async def record(self, tx: AsyncSession, token: str, kind: BounceKind, status: str) -> BounceResult | None:
        owner = await owner_of(tx, "bounce", token)
        if owner is None:
            return None
        account = await tx.get(Account, owner.account_id)
        if account is None:
            return None
        address = owner.address
        if kind == "none":
            return BounceResult(account.id, address, kind, failing=False, closed=False)
        health = await tx.scalar(
            select(DeliveryHealth).where(DeliveryHealth.account_id == account.id, DeliveryHealth.address == address)
        )
        if health is None:
            health = DeliveryHealth(account_id=account.id, address=address, hard_bounces=0, soft_bounces=0,
                                    failing=False, last_status="")
            tx.add(health)
        health.last_status = status[:200]
        health.last_bounce_at = utcnow()
        tx.add(MailEvent(account_id=account.id, kind="bounce", via="dsn", detail=f"{address}: {kind} {status}"[:1000]))
        if kind == "soft":
            health.soft_bounces += 1
            return BounceResult(account.id, address, kind, failing=health.failing, closed=False)
        health.hard_bounces += 1
        newly_failing = not health.failing and health.hard_bounces >= self.settings.inbound.hard_bounces_to_fail
        closed = False
        if newly_failing:
            health.failing = True
            await tx.flush()
            working = await working_addresses(tx, account)
            if not working and account.plan in self.settings.inbound.close_on_bounces and account.state != "closed":
                await close_account(
                    tx, account, via="dsn", reason="no delivery address accepts our mail (R-ACCT-5 (ii))"
                )
                closed = True
            elif working:
                await self.outbox.enqueue(tx, self._failing_notice(account, address, status, working),
                                          kind=MailKind.ADDRESS_FAILING)
            log.info("account %s: delivery address %s is failing (%s)%s", account.id, address, status,
                     "; account closed" if closed else "")
        return BounceResult(account.id, address, kind, failing=health.failing, closed=closed)

    def _failing_notice(self, account: Account, address: str, status: str, working: list[str]) -> EmailMessage:
        body = (
            "Hello,\n\n"
            f"Mail we send to {address}, one of the addresses your faxes are delivered to, is\n"
            f"refused by the receiving mail system ({status}).\n\n"
            "We no longer deliver faxes to that address; the others still get them. Please\n"
            "check the address, or replace it with one that works.\n"
        )
        return account_notice(self.settings, to=working, subject=f"Faxes cannot be delivered to {address}", body=body)


@dataclass(frozen=True)
class AccountView:
    """An account as a batch of received faxes sees it: read when the batch starts.
    The delivery commit checks the account's state again (R-NUM-2)."""

    id: int
    state: str
    plan: str
    promo_opt_in: bool
    inbound_format: str  # "pdf" | "tiff"
    time_zone: str
    addresses: tuple[str, ...]  # working delivery addresses, oldest first
    unsubscribe_token: str
    bounce_tokens: Mapping[str, str]  # delivery address -> its VERP token


class AccountViews:
    """The accounts of a batch of received faxes, read in three queries for the whole
    batch instead of several per fax (bench/inbound), and kept for the next batch.

    `load(ids)` always reads afresh, so what a batch sees is at most as old as the
    batch; tokens an account lacks are made then, in one small transaction."""

    KEEP = 10_000  # views kept (least recently loaded dropped first)

    def __init__(self, db: Database) -> None:
        self.db = db
        self._views: OrderedDict[int, AccountView] = OrderedDict()

    async def get(self, account_id: int) -> AccountView | None:
        if account_id not in self._views:
            await self.load([account_id])
        return self._views.get(account_id)

    async def load(self, account_ids: Iterable[int]) -> None:
        ids = sorted(set(account_ids))
        async with self.db.reading() as session:
            rows = await self._read(session, ids)
        missing = [(purpose, account_id, address) for account_id, (_, addresses, tokens) in rows.items()
                   for purpose, address in _tokens_wanted(addresses)
                   if (purpose, address) not in tokens]
        if missing:
            await self._make_tokens(missing)
            async with self.db.reading() as session:
                rows = await self._read(session, ids)
        for account_id, (account, addresses, tokens) in rows.items():
            self._views[account_id] = AccountView(
                id=account_id, state=account.state, plan=account.plan, promo_opt_in=account.promo_opt_in,
                inbound_format=account.inbound_format, time_zone=account.time_zone, addresses=tuple(addresses),
                unsubscribe_token=tokens.get(("unsubscribe", ""), ""),
                bounce_tokens={a: tokens[("bounce", a)] for a in addresses if ("bounce", a) in tokens},
            )
            self._views.move_to_end(account_id)
        for gone in set(ids) - rows.keys():
            self._views.pop(gone, None)
        while len(self._views) > self.KEEP:
            self._views.popitem(last=False)

    @staticmethod
    async def _read(
        session: AsyncSession, ids: list[int]
    ) -> dict[int, tuple[Any, list[str], dict[tuple[str, str], str]]]:
        accounts = (
            await session.execute(
                select(Account.id, Account.state, Account.plan, Account.promo_opt_in, Account.inbound_format,
                       Account.time_zone).where(Account.id.in_(ids))
            )
        ).all()
        failing = exists().where(
            DeliveryHealth.account_id == AccountAddress.account_id,
            DeliveryHealth.address == AccountAddress.address,
            DeliveryHealth.failing.is_(True),
        )
        addresses: dict[int, list[str]] = defaultdict(list)
        for account_id, address in await session.execute(
            select(AccountAddress.account_id, AccountAddress.address)
            .where(AccountAddress.account_id.in_(ids), AccountAddress.kind == "delivery", ~failing)
            .order_by(AccountAddress.id)
        ):
            addresses[account_id].append(address)
        tokens: dict[int, dict[tuple[str, str], str]] = defaultdict(dict)
        for account_id, purpose, address, token in await session.execute(
            select(MailToken.account_id, MailToken.purpose, MailToken.address, MailToken.token)
            .where(MailToken.account_id.in_(ids))
        ):
            tokens[account_id][(purpose, address)] = token
        return {row.id: (row, addresses[row.id], tokens[row.id]) for row in accounts}

    async def _make_tokens(self, wanted: list[tuple[Purpose, int, str]]) -> None:
        try:
            async with self.db.transaction() as tx:
                for purpose, account_id, address in wanted:
                    await token_for(tx, purpose, account_id, address)
        except IntegrityError:
            pass  # another process made some of them at the same moment: read theirs


def _tokens_wanted(addresses: Iterable[str]) -> list[tuple[Purpose, str]]:
    """The tokens an account's mails carry, by (purpose, address): one to unsubscribe,
    and one per delivery address for the bounces of mail sent to it (VERP)."""
    return [("unsubscribe", ""), *(("bounce", a) for a in addresses)]


async def working_addresses(tx: AsyncSession, account: Account) -> list[str]:
    """The account's delivery addresses that are not failing."""
    failing = set(
        (await tx.scalars(
            select(DeliveryHealth.address)
            .where(DeliveryHealth.account_id == account.id, DeliveryHealth.failing.is_(True))
        )).all()
    )
    return [a for a in account.delivery_addresses() if a not in failing]
