"""Account state with its reasons: holds placed and lifted, closing.

Where it sits: the one place that changes `Account.state`. Money (R-DEP-8: a chargeback,
a declined fee), abuse (R-ABUSE-1/3: a case that reached its threshold), the inbound
flow (R-ACCT-5 closings) and the operator's `faxbridge account suspend|resume|close`
call it inside their own transaction, so the hold, the summary state and the record of
the change commit with the rest of what they do, or not at all.

An account is suspended while any hold remains, and lifting one hold leaves the others
(STYLE 13): a chargeback suspension outlives the dismissal of an abuse case. Closed is
final: no hold placed or lifted opens a closed account again. `Account.state` stays the
stored summary (`Account.state == "active"` is what the sender check, the meter and the
billing cycle query), derived here from the open holds.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account, AccountHold, AccountStateChange
from bridge.core.models import utcnow

log = logging.getLogger("bridge.accounts.state")


class AccountState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class HoldReason(StrEnum):
    """Why an account is held; each party lifts only its own holds."""

    CHARGEBACK = "chargeback"  # R-DEP-8
    DECLINED_FEE = "declined_fee"  # R-DEP-8: a declined charge the deposit cannot cover
    FAIR_USE = "fair_use"  # R-USE-4: "the account may then be suspended"
    ABUSE_CASE = "abuse_case"  # R-ABUSE-1, R-ABUSE-3
    OPERATOR = "operator"  # `faxbridge account suspend`


async def open_holds(tx: AsyncSession, account_id: int) -> list[AccountHold]:
    """The holds that keep the account suspended, oldest first."""
    return list(
        await tx.scalars(
            select(AccountHold)
            .where(AccountHold.account_id == account_id, AccountHold.lifted_at.is_(None))
            .order_by(AccountHold.placed_at, AccountHold.id)
        )
    )


def describe_hold(hold: AccountHold) -> str:
    """One line for an operator: what holds the account, under which rule, since when."""
    about = f" {hold.ref}" if hold.ref else ""
    note = f": {hold.note}" if hold.note else ""
    return (
        f"{hold.reason}{about} ({hold.rule or 'no rule'}), placed {hold.placed_at:%Y-%m-%d %H:%M} UTC"
        f" by {hold.placed_by}{note}"
    )


async def place_hold(
    tx: AsyncSession, account: Account, reason: HoldReason, *, rule: str, ref: str, by: str, note: str = ""
) -> AccountHold:
    """Hold the account for `reason` about `ref`; it is suspended until every hold is
    lifted. Placing a hold that is open already returns it and records nothing."""
    await _lock(tx, account)
    existing = await _open_hold(tx, account.id, reason, ref)
    if existing is not None:
        return existing
    hold = AccountHold(
        account_id=account.id, reason=reason.value, rule=rule, ref=ref, placed_at=utcnow(), placed_by=by, note=note
    )
    tx.add(hold)
    await tx.flush()
    await _settle(tx, account, by=by, reason=reason.value, rule=rule, ref=ref, note=note)
    return hold


async def lift_hold(
    tx: AsyncSession, account: Account, reason: HoldReason, *, ref: str, by: str, note: str = ""
) -> AccountHold | None:
    """Lift the one open hold for (`reason`, `ref`); the account is active again only
    if no other hold remains and it is not closed. None when there was no such hold."""
    await _lock(tx, account)
    hold = await _open_hold(tx, account.id, reason, ref)
    if hold is None:
        return None
    hold.lifted_at, hold.lifted_by = utcnow(), by
    await tx.flush()
    await _settle(tx, account, by=by, reason=reason.value, rule=hold.rule, ref=ref, note=note)
    return hold


async def close(tx: AsyncSession, account: Account, *, by: str, reason: str, rule: str = "") -> bool:
    """Close the account for good (R-ACCT-4, R-ACCT-5); False when it was closed already.
    Its open holds stay on record: they say why it was suspended when it closed."""
    await _lock(tx, account)
    if account.state == AccountState.CLOSED:
        return False
    _record(tx, account, AccountState.CLOSED, by=by, reason=reason, rule=rule, ref="", note="")
    return True


async def _lock(tx: AsyncSession, account: Account) -> None:
    # Two parties changing one account at once (a chargeback while an abuse case is
    # dismissed) must not both derive the state from what they saw before the other
    # committed: the account row is locked (PostgreSQL; SQLite has one writer anyway)
    # and its state read again under the lock.
    await tx.refresh(account, ["state"], with_for_update=True)


async def _open_hold(tx: AsyncSession, account_id: int, reason: HoldReason, ref: str) -> AccountHold | None:
    return await tx.scalar(
        select(AccountHold).where(
            AccountHold.account_id == account_id,
            AccountHold.reason == reason.value,
            AccountHold.ref == ref,
            AccountHold.lifted_at.is_(None),
        )
    )


async def _settle(tx: AsyncSession, account: Account, *, by: str, reason: str, rule: str, ref: str, note: str) -> None:
    """Derive the state from the open holds and record the change."""
    if account.state == AccountState.CLOSED:
        to_state = AccountState.CLOSED
    elif await open_holds(tx, account.id):
        to_state = AccountState.SUSPENDED
    else:
        to_state = AccountState.ACTIVE
    _record(tx, account, to_state, by=by, reason=reason, rule=rule, ref=ref, note=note)


def _record(
    tx: AsyncSession, account: Account, to_state: AccountState, *, by: str, reason: str, rule: str, ref: str, note: str
) -> None:
    from_state = account.state
    account.state = to_state.value
    tx.add(
        AccountStateChange(
            account_id=account.id, at=utcnow(), by=by, from_state=from_state, to_state=to_state.value,
            reason=reason, rule=rule, ref=ref, note=note,
        )
    )
    if from_state != to_state:
        log.info("account %s %s -> %s by %s: %s %s %s", account.id, from_state, to_state.value, by, reason, rule, ref)
