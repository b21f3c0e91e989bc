"""`faxbridge abuse ...`: the operator's view of abuse cases and reports (R-ABUSE-3).

Where it sits: a CLI extension (bridge.cli.CLI_EXTENSIONS). It works on the database
directly, like `faxbridge account`; a running server sees the change at once (a
suspended account's next fax is refused by the sender check).

    faxbridge abuse list [--state open|suspended|dismissed|all] [--quarantine]
    faxbridge abuse show CASE
    faxbridge abuse suspend CASE [--reason TEXT]
    faxbridge abuse dismiss CASE [--reason TEXT]
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bridge.abuse import cases
from bridge.abuse.models import CASE_STATES, QUARANTINED, AbuseCase, AbuseReport
from bridge.accounts.models import Account
from bridge.accounts.state import describe_hold, open_holds
from bridge.core.cli import CommandError, with_db
from bridge.core.db import Database

if TYPE_CHECKING:
    from bridge.settings import Settings


def extend(commands: Any, groups: dict[str, Any]) -> None:
    abuse = commands.add_parser("abuse", help="abuse cases from the abuse mailbox").add_subparsers(
        dest="abuse_command", metavar="ACTION"
    )
    listing = abuse.add_parser("list", help="abuse cases, newest first (or quarantined reports)")
    listing.add_argument("--state", choices=[*CASE_STATES, "all"], default="all")
    listing.add_argument("--quarantine", action="store_true", help="list the quarantined reports and why")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_list)
    show = abuse.add_parser("show", help="one case with its reports and evidence")
    show.add_argument("case", type=int)
    show.set_defaults(handler=_show)
    suspend = abuse.add_parser("suspend", help="suspend the account's sending and the reported numbers")
    suspend.add_argument("case", type=int)
    suspend.add_argument("--reason", default="by the operator")
    suspend.set_defaults(handler=_suspend)
    dismiss = abuse.add_parser("dismiss", help="close the case as mistaken; lifts a suspension it made")
    dismiss.add_argument("case", type=int)
    dismiss.add_argument("--reason", default="dismissed by the operator")
    dismiss.set_defaults(handler=_dismiss)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            if args.quarantine:
                reports = (
                    await session.scalars(
                        select(AbuseReport)
                        .where(AbuseReport.outcome == QUARANTINED)
                        .order_by(AbuseReport.received_at.desc())
                        .limit(args.limit)
                    )
                ).all()
                for r in reports:
                    print(
                        f"{r.id:<24} uid {r.uid:<6} {r.received_at:%Y-%m-%d %H:%M}  "
                        f"{r.reporter or '-':<30} {r.reason[:70]}"
                    )
                if not reports:
                    print("no quarantined reports")
                return 0
            query = select(AbuseCase).order_by(AbuseCase.id.desc()).limit(args.limit)
            if args.state != "all":
                query = query.where(AbuseCase.state == args.state)
            found = (await session.scalars(query)).all()
            for c in found:
                print(
                    f"{c.id:>5}  account {c.account_id:<5} {c.state:<10} {','.join(c.kinds):<18} "
                    f"reports {c.report_count:<3} reporters {len(c.reporters):<3} {', '.join(c.numbers)}"
                )
            if not found:
                print("no abuse cases")
        return 0

    return with_db(settings.database, work)


def _show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:

        async with db.reading() as session:
            case = await session.get(AbuseCase, args.case)
            if case is None:
                raise CommandError(f"no abuse case {args.case}")
            account = await session.get(Account, case.account_id)
            reports = (
                await session.scalars(
                    select(AbuseReport).where(AbuseReport.case_id == case.id).order_by(AbuseReport.received_at)
                )
            ).all()
        state = account.state if account else "?"
        senders = ", ".join(account.sender_addresses()) if account else ""
        print(f"abuse case {case.id}")
        print(f"  account:    {case.account_id} ({state}) {senders}")
        print(f"  state:      {case.state}")
        print(f"  kinds:      {', '.join(case.kinds)}  (drop-box: R-ABUSE-3, junk-fax: R-ABUSE-1)")
        print(f"  numbers:    {', '.join(case.numbers)}")
        print(f"  reporters:  {', '.join(case.reporters)}")
        print(f"  opened:     {case.opened_at:%Y-%m-%d %H:%M:%S} UTC")
        if case.closed_at:
            print(f"  closed:     {case.closed_at:%Y-%m-%d %H:%M:%S} UTC ({case.resolution})")
        print(f"  reports ({len(reports)}):")
        for r in reports:
            print(f"    {r.id}  {r.received_at:%Y-%m-%d %H:%M}  {r.kind:<10} from {r.reporter}  {r.subject[:60]!r}")
            for line in r.evidence.splitlines()[:10]:
                print(f"        {line[:120]}")
        return 0

    return with_db(settings.database, work)


def _suspend(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:

        try:
            async with db.transaction() as tx:
                case = await cases.suspend_case(tx, args.case, f"operator: {args.reason}")
        except cases.CaseError as error:
            raise CommandError(str(error)) from None
        numbers = ", ".join(case.numbers) or "-"
        print(f"case {case.id}: account {case.account_id} suspended; numbers {numbers} suspended")
        return 0

    return with_db(settings.database, work)


def _dismiss(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:

        try:
            async with db.transaction() as tx:
                case = await cases.dismiss_case(tx, args.case, f"operator: {args.reason}")
                held = await open_holds(tx, case.account_id)
        except cases.CaseError as error:
            raise CommandError(str(error)) from None
        print(f"case {case.id} dismissed; account {case.account_id} is not suspended by it")
        # Its other holds (a chargeback, an operator's) keep it suspended: say which.
        for hold in held:
            print(f"  account {case.account_id} is still held: {describe_hold(hold)}")
        return 0

    return with_db(settings.database, work)
