"""R-USE: what a unit is, how a transmission is billed, which attempts cost money, and
fair use over rolling 30-day windows."""

from __future__ import annotations

import pytest

from bridge.money.meter import billed_units
from tests.money.support import Books

NUMBER = "+12125550100"


@pytest.mark.parametrize(
    ("pages", "seconds", "billed"),
    [
        (3, 200, 4),  # SPEC's worked example: 200 s is 4 started minutes
        (3, 100, 3),  # SPEC's worked example: the pages are more
        (3, 180, 3),  # exactly 3 minutes
        (3, 180.5, 4),  # half a second into the fourth minute
        (1, 60.0, 1),
        (1, 61, 2),
        (0, 30, 1),  # answered, no page got through, 30 s on the line
        (0, 0, 0),
    ],
)
def test_R_USE_2_billed_pages_are_the_greater_of_pages_and_started_minutes(pages, seconds, billed):
    assert billed_units(pages, seconds) == billed


@pytest.mark.parametrize(("pages", "seconds", "charged"), [(3, 200, 40), (3, 100, 30)])
async def test_R_USE_2_partial_minute_bills_an_extra_page(books: Books, pages, seconds, charged):
    account = await books.account()
    job = books.job(account, [NUMBER], pages)
    await books.metering.authorise(job)
    assert await books.attempt(job, NUMBER, answered=True, pages=pages, seconds=seconds) == charged
    [usage] = await books.entries(account, "usage")
    assert usage.amount_minor == -charged and usage.units == charged // 10
    await books.assert_consistent(account)


@pytest.mark.parametrize(
    ("outcome", "answered", "pages", "seconds", "charged"),
    [
        ("completed", True, 2, 70, 20),
        ("dropped", True, 1, 50, 10),  # answered, cut off: still a transmission
        ("training_failed", True, 0, 20, 10),  # answered, the modems never trained
        ("busy", False, 0, 0, 0),
        ("no_answer", False, 0, 45, 0),
        ("not_in_service", False, 0, 3, 0),
    ],
)
async def test_R_USE_3_every_answered_attempt_is_billed_and_only_those(
    books: Books, outcome, answered, pages, seconds, charged
):
    account = await books.account()
    job = books.job(account, [NUMBER], 2)
    await books.metering.authorise(job)
    assert await books.attempt(job, NUMBER, answered=answered, pages=pages, seconds=seconds, outcome=outcome) == charged
    assert sum(-e.amount_minor for e in await books.entries(account, "usage")) == charged


async def test_R_USE_3_each_answered_retry_is_billed_again_but_each_attempt_once(books: Books):
    account = await books.account()
    job = books.job(account, [NUMBER], 2)
    await books.metering.authorise(job)
    first = await books.attempt(job, NUMBER, answered=True, pages=1, seconds=40, attempt_no=1, outcome="dropped")
    second = await books.attempt(job, NUMBER, answered=True, pages=2, seconds=70, attempt_no=2)
    assert (first, second) == (10, 20)
    # The same attempt charged again (a retried transaction) costs nothing more.
    async with books.db.transaction() as tx:
        from sqlalchemy import select

        from bridge.outbound.models import CallAttempt

        attempt = await tx.scalar(select(CallAttempt).where(CallAttempt.attempt == 2))
        assert await books.metering.charge_attempt(tx, job=job, attempt=attempt) == 20
    assert len(await books.entries(account, "usage")) == 2
    await books.settle(job)
    await books.assert_consistent(account)
    assert (await books.state(account)).held_minor == 0


@pytest.mark.parametrize(
    ("plan", "pages", "seconds", "units", "charged"),
    [
        ("free", 5, 0, 5, 0),  # a unit, though Free pays nothing for it
        ("plus", 5, 0, 5, 0),  # within the Plus allowance
        ("plus", 2, 150, 3, 0),  # R-USE-2 applies to receptions too
    ],
)
async def test_R_USE_1_each_received_page_is_a_unit(books: Books, plan, pages, seconds, units, charged):
    from sqlalchemy import select

    from bridge.money.models import UsageRecord

    account = await books.account(plan=plan, card=None)
    assert await books.inbound(account, "R1", pages, seconds=seconds) == charged
    async with books.db.reading() as session:
        record = await session.scalar(select(UsageRecord).where(UsageRecord.source_key == "inbound:R1"))
    assert record.units == units and record.direction == "in"


@pytest.mark.parametrize(("received", "noticed"), [(20, False), (21, True)])
async def test_R_USE_4_free_account_over_20_pages_in_30_days_is_told_and_offered_an_upgrade(
    books: Books, received, noticed
):
    account = await books.account(plan="free", card=None)
    await books.inbound(account, "old", 15)
    books.clock.advance(days=31)  # the old pages leave the window
    for n in range(received):
        await books.inbound(account, f"f{n}", 1)
        books.clock.advance(hours=1)
    await books.cycle.fair_use()
    await books.cycle.fair_use()  # told once per window, not at every cycle
    mails = await books.mails("fair-use")
    assert len(mails) == (1 if noticed else 0)
    if noticed:
        assert f"received {received} pages in the last 30 days" in mails[0][1]
        assert "Upgrade to the\nPlus plan" in mails[0][1]
        assert await books.account_state(account) == "active"


@pytest.mark.parametrize(
    ("plan", "others", "usage", "overage_units"),
    [
        # Plus: line = max(2 x average, 130). Others use 10 each.
        ("plus", [10, 10, 10], 129, 0),  # under the floor: not enforced
        ("plus", [10, 10, 10], 131, 1),  # average 40.25, 2x = 80.5 -> line 130 (floor)
        ("plus", [100, 100, 100], 200, 0),  # average 125, 2x = 250: within
        ("plus", [100, 100, 100], 400, 50),  # average 175, 2x = 350: 50 beyond
        # Pro: line = max(3 x average, 200).
        ("pro", [10, 10, 10], 199, 0),
        ("pro", [10, 10, 10], 230, 30),  # average 65, 3x = 195 -> line 200 (floor)
    ],
)
async def test_R_USE_5_usage_above_the_multiple_of_the_paid_average_and_the_floor_is_overage(
    books: Books, plan, others, usage, overage_units
):
    expected = overage_units
    for used in others:
        other = await books.account(plan="plus", card=None)
        await books.inbound(other, f"o{other}", used)
    account = await books.account(plan=plan)
    await books.inbound(account, f"v{account}", usage)
    charged = await books.cycle.fair_use()
    overage = await books.entries(account, "overage")
    assert charged == sum(e.units for e in overage) == expected
    assert sum(-e.amount_minor for e in overage) == expected * 15  # R-USE-6: USD 0.15 each
    if expected:
        [(_, text)] = await books.mails("fair-use-overage")
        assert f"{expected} unit(s) of overage at USD 0.15 each: {books.money(expected * 15)}" in text


async def test_R_USE_6_overage_is_charged_once_over_overlapping_windows_and_plus_is_offered_pro(books: Books):
    for _ in range(3):
        await books.account(plan="plus", card=None)  # paid customers who used nothing
    account = await books.account(plan="plus")
    await books.inbound(account, "a", 140)
    assert await books.cycle.fair_use() == 10  # average 35, 2x = 70 -> line 130 (floor)
    books.clock.advance(days=1)
    assert await books.cycle.fair_use() == 0  # same units, next day's window: not again
    await books.inbound(account, "b", 5)
    assert await books.cycle.fair_use() == 5
    books.clock.advance(days=31)
    await books.inbound(account, "c", 131)
    assert await books.cycle.fair_use() == 1  # a new window counts afresh
    mails = await books.mails("fair-use-overage")
    assert all("Pro plan has a larger fair-use allowance" in text for _, text in mails)
    await books.assert_consistent(account)


async def test_R_USE_1_R_PLAN_2_R_PLAN_3_a_batch_of_received_faxes_costs_what_one_after_another_costs(books: Books):
    """Inbound delivery charges a whole batch of faxes in one transaction
    (`charge_receptions`); the allowance must be used up fax by fax as if each were
    charged alone: same amounts, same usage, same ledger."""
    from sqlalchemy import select

    from bridge.money.meter import Reception
    from bridge.money.models import UsageRecord

    # Plus: 150 received pages free a month, 10 a unit beyond, 7 a toll-free unit.
    faxes = [("a", 100, "local"), ("b", 40, "local"), ("c", 3, "toll-free"), ("d", 20, "local"), ("e", 5, "local")]
    one_by_one = await books.account(plan="plus", card=None)
    alone = [await books.inbound(one_by_one, f"{one_by_one}-{name}", pages, kind=kind) for name, pages, kind in faxes]

    batched = await books.account(plan="plus", card=None)
    async with books.db.transaction() as tx:
        charged = await books.metering.charge_receptions(
            tx, [Reception(batched, f"{batched}-{name}", pages, 0, kind) for name, pages, kind in faxes]
        )
    together = [charged[f"{batched}-{name}"] for name, _, _ in faxes]

    assert alone == together == [0, 0, 3 * 7, 10 * 10, 5 * 10]  # 150 free: a and b fill it, d goes 10 over
    assert (await books.state(one_by_one)).balance_minor == (await books.state(batched)).balance_minor == -171
    await books.assert_consistent(batched)
    async with books.db.reading() as session:
        units = {r.source_key.split("-", 1)[1]: (r.units, r.charged_minor)
                 for r in await session.scalars(select(UsageRecord).where(UsageRecord.account_id == batched))}
    assert units == {name: (pages, together[n]) for n, (name, pages, _) in enumerate(faxes)}

    # Charged once: the same batch again charges nothing new and answers what was charged.
    async with books.db.transaction() as tx:
        again = await books.metering.charge_receptions(
            tx, [Reception(batched, f"{batched}-{name}", pages, 0, kind) for name, pages, kind in faxes]
        )
    assert again == charged
    assert (await books.state(batched)).balance_minor == -171
