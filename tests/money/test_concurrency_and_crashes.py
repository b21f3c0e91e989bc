"""Exactly once under concurrency and crashes (R-DEP-10, R-USE-3): attempts charged at
the same moment, the same attempt charged twice, and a process that dies between the
processor's charge and the ledger entry."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import select

from bridge.money.models import CardCharge
from bridge.money.processor import ChargeResult
from bridge.outbound.models import CallAttempt
from tests.money.support import Books

NUMBER = "+12125550100"


async def test_two_attempts_charged_at_once_are_each_charged_once_and_never_go_negative(books: Books):
    account = await books.account()
    jobs = [books.job(account, [NUMBER], 5) for _ in range(2)]
    for job in jobs:
        await books.metering.authorise(job)
    charged = await asyncio.gather(
        *(books.attempt(job, NUMBER, answered=True, pages=5, seconds=200) for job in jobs)
    )
    assert charged == [50, 50]
    state = await books.state(account)
    assert state.balance_minor == 1000 - 100 and state.held_minor == 0
    await books.assert_consistent(account)


async def test_the_same_attempt_charged_by_two_workers_at_once_is_charged_once(books: Books):
    account = await books.account()
    job = books.job(account, [NUMBER], 3)
    await books.metering.authorise(job)
    async with books.db.transaction() as tx:
        tx.add(CallAttempt(job_id=job.id, account_id=account, number=NUMBER, attempt=1, outcome="completed",
                           answered=True, pages_sent=3, line_seconds=200))
    async with books.db.reading() as session:
        attempt_id = await session.scalar(select(CallAttempt.id))

    async def charge() -> int:
        async with books.db.transaction() as tx:
            attempt = await tx.get(CallAttempt, attempt_id)
            return await books.metering.charge_attempt(tx, job=job, attempt=attempt)

    assert await asyncio.gather(charge(), charge(), charge()) == [40, 40, 40]
    assert [e.amount_minor for e in await books.entries(account, "usage")] == [-40]
    await books.assert_consistent(account)


async def test_many_concurrent_faxes_for_one_account_hold_and_charge_exactly_and_stay_above_zero(books: Books):
    account = await books.account()
    jobs = [books.job(account, [NUMBER], 4) for _ in range(30)]  # 30 x USD 0.40 = USD 12.00
    results = await asyncio.gather(*(books.metering.authorise(job) for job in jobs), return_exceptions=True)
    held = [job for job, result in zip(jobs, results, strict=True) if not isinstance(result, Exception)]
    refused = [result for result in results if isinstance(result, Exception)]
    state = await books.state(account)
    # One deposit of USD 10.00 covers 25 faxes; the rest are refused, not overdrawn.
    assert len(held) == 25 and len(refused) == 5 and state.held_minor == 1000
    assert len(await books.processor.charges()) == 1
    await asyncio.gather(*(books.attempt(job, NUMBER, answered=True, pages=4, seconds=100) for job in held))
    for job in held:
        await books.settle(job)
    state = await books.state(account)
    assert state.balance_minor == 0 and state.held_minor == 0
    assert sum(e.units for e in await books.entries(account, "usage")) == 25 * 4
    await books.assert_consistent(account)


async def test_a_charge_made_before_a_crash_is_reconciled_by_its_key_not_charged_again(books: Books):
    account = await books.account()
    # The meter step wrote the deposit down and the processor charged it; the process
    # died before the answer reached the ledger.
    async with books.db.transaction() as tx:
        state = await books.metering.ledger.account(tx, account)
        charge = await books.metering.payments.request(
            tx, state, purpose="deposit", amount_minor=1000, key="deposit:crash:1", memo="first deposit")
        token = charge.token
    made = await books.processor.charge(
        token, 1000, "USD", idempotency_key="deposit:crash:1", description="first deposit"
    )
    assert made.approved
    assert await books.entries(account) == []  # the crash: charged, not recorded
    # A new process starts: the component reconciles before taking any fax in.
    restarted = books.fresh_metering()
    assert await restarted.payments.reconcile() == 1
    assert await restarted.payments.reconcile() == 0
    assert [(key, amount) for key, amount, _ in await books.processor.charges()] == [("deposit:crash:1", 1000)]
    [deposit] = await books.entries(account, "deposit")
    assert deposit.amount_minor == 1000 and deposit.reference == "card:deposit:crash:1"
    async with books.db.reading() as session:
        recorded = await session.scalar(select(CardCharge).where(CardCharge.idempotency_key == "deposit:crash:1"))
    assert recorded.state == "approved" and recorded.processor_ref == made.reference
    await books.assert_consistent(account)


async def test_an_answer_recorded_twice_after_a_race_posts_once(books: Books):
    account = await books.account()
    async with books.db.transaction() as tx:
        state = await books.metering.ledger.account(tx, account)
        await books.metering.payments.request(tx, state, purpose="deposit", amount_minor=1000, key="k", memo="deposit")
    answer = ChargeResult(True, "ch_race")
    await asyncio.gather(books.metering.payments.record("k", answer), books.metering.payments.record("k", answer))
    assert [e.amount_minor for e in await books.entries(account)] == [1000]


async def test_random_sequences_of_money_work_keep_the_cached_balance_equal_to_the_ledger(books: Books):
    """A seeded random walk over deposits, sends, attempts, inbound faxes, fees, refunds
    and fair use: after every step the caches equal the sums, and the balance is never
    below zero except by usage of work already performed (R-USE-3) before a top-up."""
    rng = random.Random(20260301)
    account = await books.account()
    open_jobs = []
    for step in range(120):
        action = rng.choice(["send", "attempt", "attempt", "settle", "inbound", "cycle", "topups", "advance"])
        if action == "send":
            job = books.job(account, [rng.choice([NUMBER, "+442079460000"])], rng.randint(1, 8))
            try:
                await books.metering.authorise(job)
                open_jobs.append(job)
            except Exception as refused:  # noqa: BLE001 - a refusal is a valid outcome here
                assert "would cost" in str(refused)
        elif action == "attempt" and open_jobs:
            job = rng.choice(open_jobs)
            await books.attempt(job, job.recipients[0], answered=rng.random() < 0.8, pages=rng.randint(0, 8),
                                seconds=rng.uniform(0, 400), attempt_no=step)
        elif action == "settle" and open_jobs:
            await books.settle(open_jobs.pop(rng.randrange(len(open_jobs))))
        elif action == "inbound":
            await books.inbound(account, f"in{step}", rng.randint(1, 40), kind=rng.choice(["local", "toll-free"]))
        elif action == "cycle":
            await books.cycle.run_once()
        elif action == "topups":
            await books.metering.payments.reconcile()
        else:
            books.clock.advance(days=rng.randint(1, 10))
        await books.assert_consistent(account)
        state = await books.state(account)
        if state.balance_minor < 0:
            # Only usage of work already done can take it below zero, and a top-up is
            # then waiting to be made.
            async with books.db.reading() as session:
                pending = await session.scalar(select(CardCharge).where(CardCharge.state == "pending"))
            assert pending is not None
        assert state.held_minor >= 0
