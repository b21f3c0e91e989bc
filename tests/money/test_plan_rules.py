"""R-PLAN: what each plan may do and what its received faxes cost."""

from __future__ import annotations

import pytest

from bridge.money.meter import PaymentRefused
from tests.money.support import Books

NUMBER = "+12125550100"


@pytest.mark.parametrize(("plan", "may_send"), [("free", False), ("plus", True), ("pro", True), ("broadcast", True)])
async def test_R_PLAN_1_free_receives_only_and_paid_plans_send(books: Books, plan, may_send):
    account = await books.account(plan=plan)
    job = books.job(account, [NUMBER], 3)
    if may_send:
        quote = await books.metering.authorise(job)
        assert quote.total_minor > 0
        return
    with pytest.raises(PaymentRefused) as refused:
        await books.metering.authorise(job)
    # The quote is at the upgrade's (Plus) rates, with the way out.
    assert "Free plan receives faxes by email but cannot send them" in refused.value.reason
    assert "USD 0.30 (3 pages x USD 0.10 to +12125550100)" in refused.value.reason
    assert "Upgrade your account to Plus" in refused.value.reason
    assert refused.value.rule == "R-DEP-9"
    assert await books.entries(account) == []  # nothing charged, no deposit taken


@pytest.mark.parametrize(
    ("plan", "already", "pages", "charged"),
    [
        ("plus", 0, 150, 0),  # the whole allowance, free
        ("plus", 140, 20, 100),  # 10 free, 10 x USD 0.10
        ("plus", 150, 5, 50),  # allowance used up
        ("pro", 450, 60, 80),  # Pro: 500 free, then USD 0.08
        ("free", 0, 50, 0),  # Free pays nothing (fair use watches it instead)
    ],
)
async def test_R_PLAN_2_monthly_allowance_of_received_units_then_a_fee_per_unit(
    books: Books, plan, already, pages, charged
):
    account = await books.account(plan=plan)
    if already:
        await books.inbound(account, "earlier", already)
    assert await books.inbound(account, "now", pages) == charged
    assert await books.inbound(account, "now", pages) == charged  # the same fax again: once
    assert sum(-e.amount_minor for e in await books.entries(account, "usage")) == charged
    await books.assert_consistent(account)


async def test_R_PLAN_2_allowance_starts_again_each_month(books: Books):
    account = await books.account(plan="plus")
    await books.inbound(account, "march", 150)
    assert await books.inbound(account, "march-more", 1) == 10
    books.clock.advance(days=31)  # April
    assert await books.inbound(account, "april", 150) == 0


@pytest.mark.parametrize(
    ("plan", "kind", "pages", "charged"),
    [
        ("plus", "toll-free", 5, 35),  # every page, allowance or not
        ("pro", "toll-free", 5, 35),
        ("plus", "local", 5, 0),
        ("pro", "remote", 5, 0),
    ],
)
async def test_R_PLAN_3_toll_free_numbers_pay_for_every_received_page(books: Books, plan, kind, pages, charged):
    account = await books.account(plan=plan)
    assert await books.inbound(account, "tf", pages, kind=kind) == charged
    [entry] = await books.entries(account, "usage") or [None]
    if charged:
        assert entry.amount_minor == -charged and "toll-free usage" in entry.memo
    else:
        assert entry is None
