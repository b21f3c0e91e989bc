"""Helpers for tests that need an account in a given state: reached the way the
service reaches it (bridge.accounts.state), never by writing `Account.state`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.accounts.models import Account
from bridge.accounts.state import AccountState, HoldReason, close, place_hold


async def put_in_state(tx: AsyncSession, account: Account, state: str) -> None:
    """Suspended by an operator's hold, or closed; "active" leaves a new account as it is."""
    if state == AccountState.SUSPENDED:
        await place_hold(tx, account, HoldReason.OPERATOR, rule="", ref="", by="operator", note="set up by the test")
    elif state == AccountState.CLOSED:
        await close(tx, account, by="operator", reason="set up by the test")
    elif state != AccountState.ACTIVE:
        raise ValueError(f"no account state {state!r}")
