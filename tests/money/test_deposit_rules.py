"""R-DEP: the prepaid deposit, top-ups, fees, refunds, declines and chargebacks, and
exact money in an append-only ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bridge.money.ledger import Money
from bridge.money.meter import PaymentRefused
from bridge.money.models import CardCharge, Hold, LedgerEntry
from tests.money.support import APPROVES, CHARGES_BACK, DECLINES, Books

NUMBER = "+12125550100"


async def test_R_DEP_1_first_send_charges_the_deposit_to_the_card_then_holds_the_quote(books: Books):
    account = await books.account()
    job = books.job(account, [NUMBER, "+12125550101"], 3)
    quote = await books.metering.authorise(job)
    assert quote.total_minor == 60
    [deposit] = await books.entries(account, "deposit")
    assert deposit.amount_minor == 1000 and "first deposit" in deposit.memo and "card ending 4242" in deposit.memo
    state = await books.state(account)
    assert (state.balance_minor, state.held_minor, state.deposit_minor) == (1000, 60, 1000)
    assert [(amount, ok) for _, amount, ok in await books.processor.charges()] == [(1000, True)]
    # The step run again (a restart after it) holds nothing more and charges nothing.
    await books.metering.authorise(job)
    assert (await books.state(account)).held_minor == 60
    assert len(await books.processor.charges()) == 1


@pytest.mark.parametrize(
    ("number", "rate"),
    [("+12125550100", 10), ("+442079460000", 12), ("+33142685300", 10), ("+4930123456", 10)],
)
async def test_R_DEP_2_usage_is_drawn_from_the_deposit_at_the_standard_rate_for_the_destination(
    books: Books, number, rate
):
    account = await books.account()
    job = books.job(account, [number], 2)
    quote = await books.metering.authorise(job)
    assert quote.total_minor == 2 * rate
    assert await books.attempt(job, number, answered=True, pages=2, seconds=60) == 2 * rate
    await books.settle(job)
    state = await books.state(account)
    assert (state.balance_minor, state.held_minor) == (1000 - 2 * rate, 0)
    await books.assert_consistent(account)


async def test_R_DEP_3_below_the_low_water_mark_a_deposit_of_the_previous_amount_is_charged_once(books: Books):
    account = await books.account()
    job = books.job(account, [NUMBER], 10)
    await books.metering.authorise(job)  # deposit USD 10.00
    # Three answered attempts of 30 pages' worth of line time: 3 x USD 3.00 = USD 9.00.
    for n in (1, 2, 3):
        await books.attempt(job, NUMBER, answered=True, pages=10, seconds=1800, attempt_no=n)
    assert (await books.state(account)).balance_minor == 100  # below USD 2.00
    await books.attempt(job, NUMBER, answered=True, pages=0, seconds=1, attempt_no=4)  # still below: no second top-up
    pending = await _charges(books, account, "pending")
    assert [(c.purpose, c.amount_minor) for c in pending] == [("topup", 1000)]
    assert books.metering.card_work.is_set()  # the component's loop makes it at once
    await books.metering.payments.reconcile()
    state = await books.state(account)
    assert state.balance_minor == 90 + 1000
    assert [e.amount_minor for e in await books.entries(account, "deposit")] == [1000, 1000]
    await books.settle(job)
    await books.assert_consistent(account)


async def test_R_DEP_4_a_raised_deposit_is_the_amount_later_top_ups_use(books: Books, site):
    account = await books.account()
    result = site.cli("account", "deposit", str(account), "--amount", "25.00")
    assert "charged USD 25.00 to the card ending 4242" in result.stdout
    state = await books.state(account)
    assert (state.balance_minor, state.deposit_minor) == (2500, 2500)
    refused = site.cli("account", "deposit", str(account), "--amount", "5.00", check=False)
    assert refused.returncode == 1 and "at least USD 10.00" in refused.stderr
    refused = site.cli("account", "deposit", str(account), "--amount", "10.001", check=False)
    assert refused.returncode == 1 and "decimal places" in refused.stderr


async def test_R_DEP_5_a_declined_fee_is_paid_from_the_deposit_and_restored_when_the_card_works(books: Books, site):
    account = await books.account()
    job = books.job(account, [NUMBER], 1)
    await books.metering.authorise(job)  # deposit USD 10.00
    await books.settle(job)  # the fax is done: nothing stays held
    await books.add_card(account, DECLINES)
    await books.cycle.run_once()  # the monthly fee, USD 10.00: declined
    state = await books.state(account)
    assert (state.balance_minor, state.fee_restore_minor) == (0, 1000)
    [fee] = await books.entries(account, "fee")
    assert fee.amount_minor == -1000 and "paid from the deposit: card declined" in fee.memo
    assert await books.account_state(account) == "active"
    [(_, text)] = await books.mails("fee-declined")
    assert "fee of USD 10.00 to your card ending 0002 (card declined)" in text
    await books.cycle.run_once()  # the card still declines: tried again, nothing changes
    assert (await books.state(account)).fee_restore_minor == 1000
    # The customer puts a working card on file: the deposit is restored at once.
    result = site.cli("account", "card", str(account), APPROVES)
    assert "restored" in result.stdout
    state = await books.state(account)
    assert (state.balance_minor, state.fee_restore_minor) == (1000, 0)
    await books.assert_consistent(account)


@pytest.mark.parametrize(
    ("usage_seconds", "held_pages", "refund"),
    [
        (0, 0, 1000),  # nothing used: all of it back
        (180, 0, 970),  # 3 pages used
        (180, 5, 920),  # and 5 pages held for a fax still being sent
    ],
)
async def test_R_DEP_6_withdrawing_the_authorisation_refunds_the_unused_deposit_less_what_is_owed(
    books: Books, site, usage_seconds, held_pages, refund
):
    account = await books.account()
    job = books.job(account, [NUMBER], 3)
    await books.metering.authorise(job)
    if usage_seconds:
        await books.attempt(job, NUMBER, answered=True, pages=3, seconds=usage_seconds)
    await books.settle(job)
    if held_pages:
        await books.metering.authorise(books.job(account, [NUMBER], held_pages))
    result = site.cli("account", "withdraw-authorisation", str(account))
    assert f"refunded {books.money(refund)} to the card ending 4242" in result.stdout
    [entry] = await books.entries(account, "refund")
    assert entry.amount_minor == -refund
    state = await books.state(account)
    assert state.balance_minor == 1000 - usage_seconds // 60 * 10 - refund
    # The card is gone: the next fax is refused, not charged.
    with pytest.raises(PaymentRefused, match="no card on your account"):
        await books.metering.authorise(books.job(account, [NUMBER], 5))
    again = site.cli("account", "withdraw-authorisation", str(account))
    assert "nothing to refund" in again.stdout  # refunded once
    await books.assert_consistent(account)


async def test_R_DEP_7_fees_are_charged_in_advance_once_per_period_and_not_refunded(books: Books, site):
    account = await books.account()
    await books.cycle.run_once()
    await books.cycle.run_once()
    fees = await books.entries(account, "fee")
    assert [f.amount_minor for f in fees] == [-1000]
    assert "monthly fee, plus plan, 2026-03-01 to 2026-04-01" in fees[0].memo
    assert [p.amount_minor for p in await books.entries(account, "payment")] == [1000]
    assert (await books.state(account)).paid_through.date().isoformat() == "2026-04-01"
    books.clock.advance(days=20)
    await books.cycle.run_once()
    assert len(await books.entries(account, "fee")) == 1
    books.clock.advance(days=12)  # into April
    await books.cycle.run_once()
    assert [f.amount_minor for f in await books.entries(account, "fee")] == [-1000, -1000]
    assert (await books.state(account)).paid_through.date().isoformat() == "2026-05-01"
    result = site.cli("account", "withdraw-authorisation", str(account))
    assert "nothing to refund" in result.stdout  # fees paid by card are not refundable
    await books.assert_consistent(account)


async def test_R_DEP_8_a_chargeback_takes_the_money_back_and_suspends_with_a_notice(books: Books):
    account = await books.account(card=CHARGES_BACK)
    await books.metering.authorise(books.job(account, [NUMBER], 1))  # deposit approved
    await books.cycle.take_chargebacks()
    await books.cycle.take_chargebacks()  # reported again by the processor: taken once
    [chargeback] = await books.entries(account, "chargeback")
    assert chargeback.amount_minor == -1000
    assert await books.account_state(account) == "suspended"
    [(_, text)] = await books.mails("account-suspended")
    assert "USD 10.00 to your card ending 0259 was charged back" in text
    assert "unsubscribe" not in text.lower()  # R-MAIL-2: a service notice, no opt-out
    await books.assert_consistent(account)


async def test_R_DEP_8_a_declined_fee_the_deposit_cannot_cover_suspends_with_a_notice(books: Books):
    account = await books.account(card=DECLINES)
    await books.cycle.run_once()
    assert await books.account_state(account) == "suspended"
    [(_, text)] = await books.mails("account-suspended")
    assert "fee of USD 10.00" in text and "your deposit cannot cover it" in text
    assert await books.entries(account) == []


@pytest.mark.parametrize(
    ("plan", "card", "state", "pages", "reason"),
    [
        ("free", APPROVES, "active", 3, "cannot send them"),
        ("plus", APPROVES, "suspended", 3, "Your account is suspended"),
        ("plus", DECLINES, "active", 3, "card ending 0002, but it was declined (card declined)"),
        ("plus", None, "active", 3, "there is no card on your account"),
        ("plus", APPROVES, "active", 101, "more than your deposit can cover even after a new deposit of USD 10.00"),
    ],
)
async def test_R_DEP_9_work_that_cannot_be_paid_for_is_refused_with_the_quote_and_why(
    books: Books, plan, card, state, pages, reason
):
    account = await books.account(plan=plan, card=card, state=state)
    with pytest.raises(PaymentRefused) as refused:
        await books.metering.authorise(books.job(account, [NUMBER], pages))
    assert reason in refused.value.reason
    assert f"USD {pages * 10 // 100}.{pages * 10 % 100:02d} ({pages} page" in refused.value.reason  # the quote
    assert refused.value.reason.rstrip().endswith(".")
    async with books.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Hold).where(Hold.account_id == account)) == 0


@pytest.mark.parametrize(
    ("digits", "minor", "text"),
    [
        (2, 120, "USD 1.20"), (2, 5, "USD 0.05"), (2, -30, "USD -0.30"), (2, 100000, "USD 1000.00"),
        (0, 1500, "USD 1500"),
    ],
)
def test_R_DEP_10_money_is_formatted_exactly_from_integer_minor_units(digits, minor, text):
    money = Money("USD", digits)
    assert money.format(minor) == text
    assert money.parse(text) == minor


async def test_R_DEP_10_the_ledger_is_append_only_and_the_balance_is_its_sum(books: Books):
    account = await books.account()
    async with books.db.transaction() as tx:
        state = await books.metering.ledger.account(tx, account)
        with pytest.raises(TypeError):
            await books.metering.ledger.post(tx, state, kind="adjustment", amount_minor=0.1, key="float", reference="t")  # type: ignore[arg-type]
        ledger = books.metering.ledger
        first = await ledger.post(tx, state, kind="adjustment", amount_minor=250, key="k1", reference="t")
        again = await ledger.post(tx, state, kind="adjustment", amount_minor=250, key="k1", reference="t")
        assert again.id == first.id and state.balance_minor == 250  # a key posts once
    async with books.db.reading() as session:
        assert await session.scalar(select(LedgerEntry.currency).where(LedgerEntry.id == first.id)) == "USD"
    await books.assert_consistent(account)


async def _charges(books: Books, account: int, state: str) -> list[CardCharge]:
    async with books.db.reading() as session:
        query = select(CardCharge).where(CardCharge.account_id == account, CardCharge.state == state)
        return list(await session.scalars(query))
