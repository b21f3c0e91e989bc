"""Account state kept with its reasons (STYLE 13): an account is suspended while any
hold remains (a chargeback, an abuse case, an operator's), lifting one hold leaves the
others, closed is final, and every change says who made it and why.

Driven the way the service gets there: the billing cycle takes a chargeback from the
offline processor (R-DEP-8), the abuse pipeline reads reports until a case suspends
(R-ABUSE-3), an operator dismisses it or types `faxbridge account ...`, a Free
customer opts out (R-ACCT-5 (iii))."""

from __future__ import annotations

import sqlite3

from alembic import command
from sqlalchemy import select

from bridge.abuse import cases
from bridge.abuse.models import DISMISSED, SUSPENDED, AbuseCase
from bridge.accounts.models import Account, AccountStateChange, FaxNumber
from bridge.accounts.state import HoldReason, lift_hold, open_holds
from bridge.core import schema
from bridge.inbound.accounts import OptOuts, token_for
from bridge.settings import Settings
from tests.accounts.conftest import AbuseDesk
from tests.money.support import CHARGES_BACK, Books
from tests.support import Site

FAXED_TO = "+12125550100"
HELD_NUMBER, HELD_NUMBER_TEXT = "+15550100002", "+1 555 010 0002"


async def _customer(books: Books, *, plan: str = "plus", card: str | None = CHARGES_BACK) -> int:
    """A customer with a number; with the card that charges back, one deposit paid."""
    account = await books.account(plan=plan, card=card)
    await books.number(account, HELD_NUMBER, "local")
    if card == CHARGES_BACK:
        await books.metering.authorise(books.job(account, [FAXED_TO], 1))  # the deposit is approved
    return account


async def _holds(books: Books, account: int) -> list[tuple[str, str, str]]:
    async with books.db.reading() as session:
        return [(h.reason, h.rule, h.ref) for h in await open_holds(session, account)]


async def _dismiss(books: Books, case_id: int) -> None:
    """What `faxbridge abuse dismiss CASE` does."""
    async with books.db.transaction() as tx:
        await cases.dismiss_case(tx, case_id, "operator: the reports were mistaken")


async def _case(books: Books, case_id: int) -> AbuseCase:
    async with books.db.reading() as session:
        case = await session.get(AbuseCase, case_id)
        assert case is not None
        return case


async def _number_state(books: Books) -> str:
    async with books.db.reading() as session:
        return str(await session.scalar(select(FaxNumber.state).where(FaxNumber.e164 == HELD_NUMBER)))


async def _changes(books: Books, account: int) -> list[tuple[str, str, str, str, str]]:
    async with books.db.reading() as session:
        rows = await session.scalars(
            select(AccountStateChange).where(AccountStateChange.account_id == account).order_by(AccountStateChange.id)
        )
        return [(c.by, c.from_state, c.to_state, c.reason, c.rule) for c in rows]


async def test_dismissing_an_abuse_case_leaves_a_chargeback_suspension_in_place(
    books: Books, abuse: AbuseDesk
) -> None:
    account = await _customer(books)
    case_id = await abuse.reach_threshold(HELD_NUMBER_TEXT)
    assert await books.account_state(account) == "suspended"
    assert await books.cycle.take_chargebacks() == 1  # R-DEP-8, while the case holds the account

    await _dismiss(books, case_id)

    assert (await _case(books, case_id)).state == DISMISSED
    assert await _number_state(books) == "assigned"  # the case's own suspension is over
    assert await books.account_state(account) == "suspended"
    [(reason, rule, ref)] = await _holds(books, account)
    assert (reason, rule) == ("chargeback", "R-DEP-8") and ref.startswith("chargeback:")


async def test_an_abuse_case_suspends_an_account_already_held_for_a_chargeback(
    books: Books, abuse: AbuseDesk
) -> None:
    account = await _customer(books)
    await books.cycle.take_chargebacks()
    assert await books.account_state(account) == "suspended"

    case_id = await abuse.reach_threshold(HELD_NUMBER_TEXT)

    assert (await _case(books, case_id)).state == SUSPENDED
    assert await _number_state(books) == "suspended"
    assert [reason for reason, _, _ in await _holds(books, account)] == ["chargeback", "abuse_case"]
    # Lifting the chargeback hold (the dispute settled) leaves the abuse case's.
    async with books.db.transaction() as tx:
        held = await tx.get(Account, account)
        assert held is not None
        [chargeback] = [h for h in await open_holds(tx, account) if h.reason == HoldReason.CHARGEBACK]
        await lift_hold(tx, held, HoldReason.CHARGEBACK, ref=chargeback.ref, by="operator", note="dispute won")
    assert await books.account_state(account) == "suspended"
    assert await _holds(books, account) == [("abuse_case", "R-ABUSE-3", str(case_id))]


async def test_lifting_the_last_hold_makes_the_account_active_again(
    site: Site, books: Books, abuse: AbuseDesk
) -> None:
    account = await _customer(books, card=None)
    case_id = await abuse.reach_threshold(HELD_NUMBER_TEXT)
    site.cli("account", "suspend", str(account), "--note", "card fraud check")

    await _dismiss(books, case_id)
    assert await books.account_state(account) == "suspended"  # the operator's hold remains
    resumed = site.cli("account", "resume", str(account)).stdout

    assert "suspended -> active" in resumed and "still held" not in resumed
    assert await books.account_state(account) == "active"
    assert await _holds(books, account) == []


async def test_a_closed_account_stays_closed_when_its_holds_are_lifted(
    site: Site, settings: Settings, books: Books, abuse: AbuseDesk
) -> None:
    account = await _customer(books, plan="free", card=None)
    case_id = await abuse.reach_threshold(HELD_NUMBER_TEXT)
    async with books.db.transaction() as tx:
        token = await token_for(tx, "unsubscribe", account)
    async with books.db.transaction() as tx:
        # R-ACCT-5 (iii): a Free customer who opts out is closed, suspended or not.
        result = await OptOuts(settings, books.outbox).unsubscribe(tx, token, via="http")
    assert result is not None and result.closed

    await _dismiss(books, case_id)
    refused = site.cli("account", "resume", str(account), check=False)

    assert await books.account_state(account) == "closed"
    assert await _holds(books, account) == []  # the case's hold is lifted; closed is final
    assert refused.returncode == 1 and "is closed" in refused.stderr
    assert (await _changes(books, account))[1:] == [
        ("inbound", "suspended", "closed", "opted out of promotional mail (R-ACCT-5 (iii)), via http", "R-ACCT-5"),
        ("abuse", "closed", "closed", "abuse_case", "R-ABUSE-3"),
    ]


async def test_every_change_is_recorded_with_who_and_why(site: Site, books: Books, abuse: AbuseDesk) -> None:
    account = await _customer(books)
    case_id = await abuse.reach_threshold(HELD_NUMBER_TEXT)
    await books.cycle.take_chargebacks()
    await _dismiss(books, case_id)
    async with books.db.reading() as session:
        [chargeback] = await open_holds(session, account)
    site.cli("account", "resume", str(account), "--hold", "chargeback", "--ref", chargeback.ref,
             "--note", "dispute won")
    site.cli("account", "close", str(account), "--note", "customer asked (R-ACCT-4)")

    assert await _changes(books, account) == [
        ("abuse", "active", "suspended", "abuse_case", "R-ABUSE-3"),
        ("billing", "suspended", "suspended", "chargeback", "R-DEP-8"),
        ("abuse", "suspended", "suspended", "abuse_case", "R-ABUSE-3"),
        ("operator", "suspended", "active", "chargeback", "R-DEP-8"),
        ("operator", "active", "closed", "customer asked (R-ACCT-4)", "R-ACCT-4"),
    ]
    async with books.db.reading() as session:
        notes = [c.note for c in await session.scalars(select(AccountStateChange).order_by(AccountStateChange.id))]
    assert "3 distinct reporters" in notes[0] and "charged back" in notes[1]
    assert notes[2] == "operator: the reports were mistaken" and notes[3] == "dispute won"


async def test_an_operators_resume_leaves_a_chargeback_suspension_and_says_which_hold_remains(
    site: Site, books: Books
) -> None:
    account = await _customer(books)
    assert "active -> suspended" in site.cli("account", "suspend", str(account)).stdout
    assert await books.cycle.take_chargebacks() == 1  # R-DEP-8, on an account the operator suspended

    resumed = site.cli("account", "resume", str(account)).stdout

    assert f"account {account}: suspended -> suspended" in resumed
    assert "still held: chargeback chargeback:" in resumed and "(R-DEP-8)" in resumed and "by billing" in resumed
    assert await books.account_state(account) == "suspended"
    shown = site.cli("account", "show", str(account)).stdout
    assert "state:     suspended" in shown and "hold:      chargeback chargeback:" in shown and "(R-DEP-8)" in shown
    again = site.cli("account", "resume", str(account), check=False)
    assert again.returncode == 1 and "no open operator hold" in again.stderr
    assert "--hold REASON --ref REF" in again.stderr  # how to lift the one that remains


def test_accounts_suspended_before_holds_were_recorded_stay_suspended_until_resumed(site: Site) -> None:
    url = site.settings().database.url
    command.upgrade(schema.alembic_config(url), "0004_abuse")
    with sqlite3.connect(site.db_path) as connection:
        connection.executemany(
            "INSERT INTO accounts (id, name, plan, state, created_at, promo_opt_in, paper_size, time_zone,"
            " inbound_format) VALUES (?, '', 'plus', ?, '2026-01-01 00:00:00', 1, 'a4', 'UTC', 'pdf')",
            [(1, "suspended"), (2, "active"), (3, "closed")],
        )
        # A database as deployed today: its version rows are the former branches' heads.
        connection.execute("DELETE FROM alembic_version")
        former_heads = [("0002_money",), ("0003_inbound",), ("0004_abuse",)]
        connection.executemany("INSERT INTO alembic_version VALUES (?)", former_heads)

    schema.upgrade(url)

    [hold] = site.query("SELECT * FROM account_holds")
    assert (hold["account_id"], hold["reason"], hold["lifted_at"]) == (1, "operator", None)
    assert hold["note"] == "suspended before holds were recorded"
    assert "hold:      operator (no rule)" in site.cli("account", "show", "1").stdout
    assert "suspended -> active" in site.cli("account", "resume", "1").stdout
    assert [r["state"] for r in site.query("SELECT state FROM accounts ORDER BY id")] == ["active", "active", "closed"]
