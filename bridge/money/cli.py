"""`faxbridge account ...` money commands and `faxbridge billing run`.

Where it sits: listed in `bridge.cli.CLI_EXTENSIONS`; adds to the `account` group:

    faxbridge account statement ID [--month YYYY-MM]   every ledger line and the totals
    faxbridge account deposit ID --amount 25.00        charge a (larger) deposit (R-DEP-4)
    faxbridge account plan ID PLAN [--cycle monthly|annual]
    faxbridge account card ID CARD-NUMBER|TOKEN        put a card on file (token + last 4 kept)
    faxbridge account withdraw-authorisation ID        refund the unused deposit (R-DEP-6)
    faxbridge account suspend|resume|close ID [--note TEXT]
    faxbridge account resume ID --hold REASON [--ref REF]   lift another hold (a settled chargeback)
    faxbridge billing run                              one billing cycle now

Each command works on the database directly (like the rest of bridge/cli.py) and moves
money only through the ledger and the payments module, with their idempotency keys.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bridge.accounts.models import Account
from bridge.accounts.senders import existing_account
from bridge.accounts.state import AccountState, HoldReason, close, describe_hold, lift_hold, open_holds, place_hold
from bridge.core.cli import CommandError, with_db
from bridge.core.db import Database
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool
from bridge.mail.outbox import signed_outbox
from bridge.money.billing import BillingCycle, add_months
from bridge.money.meter import Metering
from bridge.money.models import BillingAccount, CardCharge, LedgerEntry, PaymentMethod
from bridge.money.payments import DEPOSIT_PURPOSES, active_card, put_card_on_file
from bridge.money.processor import ProcessorError

if TYPE_CHECKING:
    from bridge.settings import Settings


def extend(commands: Any, groups: dict[str, Any]) -> None:
    account = groups["account"]
    statement = account.add_parser("statement", help="ledger lines and totals of an account")
    statement.add_argument("account_id", type=int, metavar="ID")
    statement.add_argument("--month", help="YYYY-MM (UTC); default: the whole ledger")
    statement.set_defaults(handler=_statement)

    deposit = account.add_parser("deposit", help="charge a deposit of this amount now; later top-ups use it (R-DEP-4)")
    deposit.add_argument("account_id", type=int, metavar="ID")
    deposit.add_argument("--amount", required=True, help="e.g. 25.00")
    deposit.set_defaults(handler=_deposit)

    plan = account.add_parser("plan", help="move an account to another plan")
    plan.add_argument("account_id", type=int, metavar="ID")
    plan.add_argument("plan")
    plan.add_argument("--cycle", choices=["monthly", "annual"])
    plan.set_defaults(handler=_plan)

    card = account.add_parser("card", help="put a card on file (only its token and last 4 digits are kept)")
    card.add_argument("account_id", type=int, metavar="ID")
    card.add_argument("card", metavar="CARD-NUMBER|TOKEN")
    card.set_defaults(handler=_card)

    withdraw = account.add_parser("withdraw-authorisation",
                                  help="remove the card and refund the unused deposit (R-DEP-6)")
    withdraw.add_argument("account_id", type=int, metavar="ID")
    withdraw.set_defaults(handler=_withdraw)

    for state_command, doc in (("suspend", "stop the account from sending"),
                               ("resume", "let a suspended account send again"),
                               ("close", "close the account and refund the unused deposit (R-DEP-6)")):
        parser = account.add_parser(state_command, help=doc)
        parser.add_argument("account_id", type=int, metavar="ID")
        parser.add_argument("--note", default="", help="why, for the account's record")
        if state_command == "resume":
            parser.add_argument("--hold", choices=[r.value for r in HoldReason], default=HoldReason.OPERATOR.value,
                                help="the hold to lift (default: the operator's own)")
            parser.add_argument("--ref", default="", help="which hold of that reason (see faxbridge account show ID)")
        parser.set_defaults(handler=_set_state, state_command=state_command)

    billing = commands.add_parser("billing", help="fees, fair use, chargebacks").add_subparsers(
        dest="billing_command", metavar="ACTION"
    )
    billing.add_parser("run", help="run one billing cycle now").set_defaults(handler=_billing_run)


def _cycle(settings: Settings, db: Database) -> BillingCycle:
    spool = Spool(settings.paths.spool_dir)
    spool.create()
    queue = JobQueue(db, lease_seconds=settings.queue.lease_seconds)
    # Signed like the server's mail: a notice a command sends is DKIM-signed too.
    outbox, _signer = signed_outbox(spool, queue, dkim=settings.dkim, var_dir=settings.paths.var_dir,
                                    mail_domain=settings.service.primary_domain)
    return BillingCycle(settings, db, metering=Metering(settings, db, outbox=outbox))


def _statement(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        cycle = _cycle(settings, db)
        money = cycle.money
        account = await existing_account(db, args.account_id)
        query = select(LedgerEntry).where(LedgerEntry.account_id == account.id).order_by(LedgerEntry.id)
        start = end = None
        if args.month:
            try:
                start = datetime.strptime(args.month, "%Y-%m").replace(tzinfo=UTC)
            except ValueError:
                raise CommandError(f"--month {args.month}: expected YYYY-MM") from None
            end = add_months(start, 1)
            query = query.where(LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
        async with db.reading() as session:
            entries = list(await session.scalars(query))
            opening = 0
            if start is not None:
                before = await session.scalar(
                    select(LedgerEntry).where(LedgerEntry.account_id == account.id, LedgerEntry.created_at < start)
                    .order_by(LedgerEntry.id.desc()).limit(1)
                )
                opening = before.balance_after_minor if before else 0
            billing = await session.get(BillingAccount, account.id)
            card = await active_card(session, account.id)
        period = f" for {args.month}" if args.month else ""
        print(f"statement of account {account.id} ({account.plan}, {account.state}){period},"
              f" amounts in {money.currency}")
        print(f"  opening balance {money.format(opening)}")
        credits = debits = 0
        for entry in entries:
            if entry.amount_minor >= 0:
                credits += entry.amount_minor
            else:
                debits += entry.amount_minor
            print(f"  {entry.created_at:%Y-%m-%d %H:%M}  {entry.kind:<10} {money.format(entry.amount_minor):>14}"
                  f"  balance {money.format(entry.balance_after_minor):>12}  {entry.memo}")
        closing = opening + credits + debits
        print(f"  credits {money.format(credits)}   debits {money.format(debits)}"
              f"   closing balance {money.format(closing)}")
        if billing is not None:
            print(f"  held for faxes in progress {money.format(billing.held_minor)};"
                  f" available {money.format(billing.balance_minor - billing.held_minor)}")
            if billing.deposit_minor is not None:
                print(f"  deposit amount {money.format(billing.deposit_minor)}")
            if billing.paid_through is not None:
                print(f"  fees paid through {billing.paid_through:%Y-%m-%d}")
            if billing.fee_restore_minor:
                print(f"  to restore to the deposit when the card works (R-DEP-5):"
                      f" {money.format(billing.fee_restore_minor)}")
        print(f"  card: {f'{card.brand} ending {card.last4}' if card else 'none on file'}")
        return 0

    return with_db(settings.database, work)


def _deposit(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        cycle = _cycle(settings, db)
        money, payments = cycle.money, cycle.payments
        try:
            amount = money.parse(args.amount)
        except ValueError as error:
            raise CommandError(str(error)) from None
        account = await existing_account(db, args.account_id)
        plan = cycle.metering.plan(account.plan)
        if amount < plan.deposit_minor or amount <= 0:
            raise CommandError(f"the deposit on the {account.plan} plan is at least {money.format(plan.deposit_minor)}")
        await payments.reconcile()
        async with db.transaction() as tx:
            billing = await cycle.ledger.account(tx, account.id)
            charge = await payments.request(
                tx, billing, purpose="deposit" if billing.deposit_minor is None else "topup", amount_minor=amount,
                key=await payments.next_deposit_key(tx, account.id), memo="deposit (R-DEP-4)", reference="cli",
            )
            if charge is None:
                raise CommandError(f"account {account.id} has no card on file:"
                                   f" faxbridge account card {account.id} NUMBER")
            key = charge.idempotency_key
        outcome = await payments.execute(key)
        if outcome.state != "approved":
            raise CommandError(f"the card ending {outcome.last4} declined {money.format(amount)}:"
                               f" {outcome.decline_reason}")
        async with db.reading() as session:
            billing = await cycle.ledger.account(session, account.id)
        print(f"charged {money.format(amount)} to the card ending {outcome.last4};"
              f" balance {money.format(billing.balance_minor)};"
              f" later top-ups are of {money.format(amount)}")
        return 0

    return with_db(settings.database, work)


def _plan(settings: Settings, args: argparse.Namespace) -> int:
    if args.plan not in settings.money.plans:
        raise CommandError(f"no plan {args.plan!r}; plans: {', '.join(settings.money.plans)}")

    async def work(db: Database) -> int:
        cycle = _cycle(settings, db)
        async with db.transaction() as tx:
            account = await tx.get(Account, args.account_id)
            if account is None:
                raise CommandError(f"no account {args.account_id}")
            billing = await cycle.ledger.account(tx, account.id)
            previous = account.plan
            account.plan = args.plan
            if args.cycle:
                billing.cycle = args.cycle
            if previous != args.plan or args.cycle:
                # The new plan's period starts at the next billing cycle; fees already paid
                # are not refunded (R-DEP-7).
                billing.paid_through = None
        print(f"account {args.account_id}: plan {previous} -> {args.plan};"
              f" its fees are charged at the next billing cycle")
        return 0

    return with_db(settings.database, work)


def _card(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        cycle = _cycle(settings, db)
        account = await existing_account(db, args.account_id)
        try:
            token = await cycle.metering.processor.tokenize(args.card)
        except ProcessorError as error:
            raise CommandError(str(error)) from None
        async with db.transaction() as tx:
            await put_card_on_file(tx, account_id=account.id, processor_name=cycle.metering.processor.name,
                                   token=token, at=cycle.clock())
        print(f"account {account.id}: {token.brand} card ending {token.last4} on file")
        # R-DEP-5: a deposit that paid fees is restored as soon as the card works again.
        if await cycle.restore_deposits():
            print("  the deposit that paid declined fees was restored from the card")
        return 0

    return with_db(settings.database, work)


async def _withdraw_authorisation(cycle: BillingCycle, db: Database, account_id: int) -> str:
    """R-DEP-6: remove the card and refund the unused part of the most recent deposit,
    less what is still owed (holds of faxes in progress, a negative balance)."""
    money, payments = cycle.money, cycle.payments
    await payments.reconcile()
    key = None
    async with db.transaction() as tx:
        billing = await cycle.ledger.account(tx, account_id)
        for card in await tx.scalars(select(PaymentMethod).where(PaymentMethod.account_id == account_id,
                                                               PaymentMethod.state == "active")):
            card.state = "removed"
        last = await tx.scalar(
            select(CardCharge).where(CardCharge.account_id == account_id, CardCharge.state == "approved",
                                     CardCharge.purpose.in_(DEPOSIT_PURPOSES))
            .order_by(CardCharge.id.desc()).limit(1)
        )
        refund = 0
        if last is not None:
            refund = max(0, min(billing.balance_minor, last.amount_minor) - billing.held_minor)
            if refund:
                charge = await payments.request(
                    tx, billing, purpose="refund", amount_minor=refund, key=f"refund:{last.idempotency_key}",
                    memo=f"refund of the unused deposit (R-DEP-6) to the card ending {last.last4}",
                    reference=last.processor_ref,
                )
                assert charge is not None
                charge.last4 = last.last4
                key = charge.idempotency_key
        owed = max(0, -billing.balance_minor) + billing.held_minor
    if key is None:
        return f"card removed; nothing to refund{f' (still owed: {money.format(owed)})' if owed else ''}"
    outcome = await payments.execute(key)
    if outcome.state != "approved":
        raise CommandError(f"the refund of {money.format(refund)} failed: {outcome.decline_reason}")
    return f"card removed; refunded {money.format(refund)} to the card ending {outcome.last4}"


def _withdraw(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        await existing_account(db, args.account_id)
        print(f"account {args.account_id}: {await _withdraw_authorisation(_cycle(settings, db), db, args.account_id)}")
        return 0

    return with_db(settings.database, work)


def _set_state(settings: Settings, args: argparse.Namespace) -> int:
    """`suspend` places the operator's hold, `resume` lifts that one hold (or the one
    named by --hold/--ref): an account also held for a chargeback (R-DEP-8) or an abuse
    case stays suspended, and the output says by what. `close` is final (R-ACCT-4)."""

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            account = await tx.get(Account, args.account_id)
            if account is None:
                raise CommandError(f"no account {args.account_id}")
            previous = account.state
            if previous == AccountState.CLOSED and args.state_command != "close":
                raise CommandError(f"account {account.id} is closed")
            if args.state_command == "suspend":
                await place_hold(tx, account, HoldReason.OPERATOR, rule="", ref="", by="operator", note=args.note)
            elif args.state_command == "resume":
                reason = HoldReason(args.hold)
                if await lift_hold(tx, account, reason, ref=args.ref, by="operator", note=args.note) is None:
                    held = await open_holds(tx, account.id)
                    hint = f"\n  lift one with: faxbridge account resume {account.id} --hold REASON --ref REF"
                    raise CommandError(
                        f"account {account.id} has no open {reason}{f' {args.ref}' if args.ref else ''} hold"
                        + "".join(f"\n  held: {describe_hold(hold)}" for hold in held)
                        + (hint if held else "")
                    )
            else:
                await close(tx, account, by="operator", reason=args.note or "closed by an operator", rule="R-ACCT-4")
            remaining = await open_holds(tx, account.id) if account.state == AccountState.SUSPENDED else []
        print(f"account {args.account_id}: {previous} -> {account.state}")
        for hold in remaining:
            print(f"  {'still held' if args.state_command == 'resume' else 'held'}: {describe_hold(hold)}")
        if args.state_command == "close":
            print(f"  {await _withdraw_authorisation(_cycle(settings, db), db, args.account_id)}")
        return 0

    return with_db(settings.database, work)


def _billing_run(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        report = await _cycle(settings, db).run_once()
        print(f"reconciled {report.reconciled}, chargebacks {report.chargebacks}, fees {len(report.fees)},"
              f" deposits restored {report.restored}, overage units {report.overage_units}")
        return 0

    return with_db(settings.database, work)
