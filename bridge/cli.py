"""`faxbridge`: the command line for operators and developers.

Where it sits: the entry point (console script). It loads the settings once and passes
them on: `serve` runs the app; `db`, `account`, `number` and `jobs` work on the database
directly (each applies pending migrations first, so a fresh install needs no extra
step); `render` shows what a fax of some files would look like.

    faxbridge [--config FILE] serve
    faxbridge db upgrade
    faxbridge account add EMAIL [EMAIL...] [--name N] [--plan P] [--pin PIN] [--deliver-to EMAIL...]
    faxbridge account list | account show ID|EMAIL
    faxbridge number add +E164 [--kind local|toll-free|remote|non-geographic] [--account ID]
    faxbridge number list
    faxbridge jobs list [--queue Q] [--state S] [--limit N] | jobs show ID | jobs retry ID
    faxbridge render INPUT... --out fax.tif [--standard] [--g3] [--paper letter|a4] [--no-cover]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

import phonenumbers
from sqlalchemy import select

from bridge.accounts.models import Account, AccountHold, FaxNumber
from bridge.accounts.senders import AccountError, account_for_sender, create_account
from bridge.accounts.state import describe_hold, open_holds
from bridge.components import COMPONENTS
from bridge.core import schema
from bridge.core.cli import CommandError, with_db
from bridge.core.component import CommandGroups
from bridge.core.db import Database
from bridge.core.logcontext import configure_logging
from bridge.core.models import Job
from bridge.core.queue import JOB_STATES, JobQueue
from bridge.core.settings import SettingsError
from bridge.settings import Settings, load_settings

log = logging.getLogger("bridge.cli")





def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `render` needs no settings, database or server: hand it to the renderers' CLI.
    command_at = 2 if argv[:1] == ["--config"] else 0
    if argv[command_at : command_at + 1] == ["render"]:
        from renderers.cli import main as render_main

        return render_main(argv[command_at + 1 :])
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(args.config)
    except SettingsError as error:
        print(f"faxbridge: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.logging.level if args.command == "serve" else "WARNING")
    try:
        return args.handler(settings, args)
    except (CommandError, AccountError) as error:
        print(f"faxbridge: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faxbridge", description="Email-to-fax and fax-to-email server.")
    parser.add_argument(
        "--config", help="site configuration file (overlays config/defaults.toml; or set FAXBRIDGE_CONFIG)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server until SIGTERM")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db_command", metavar="ACTION")
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(handler=_db_upgrade)
    revision = db.add_parser("revision", help="(developers) generate the next migration from every room's models")
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(handler=_db_revision)

    account = commands.add_parser("account", help="customer accounts").add_subparsers(
        dest="account_command", metavar="ACTION"
    )
    add = account.add_parser("add", help="register an account and its sender addresses")
    add.add_argument("emails", nargs="+", metavar="EMAIL", help="addresses that may send faxes (at most 5)")
    add.add_argument("--name", default="")
    add.add_argument("--plan", choices=["free", "plus", "pro", "broadcast"])
    add.add_argument("--pin", help="PIN for SMTP AUTH (stored only as a salted scrypt hash)")
    add.add_argument(
        "--deliver-to", nargs="+", default=[], metavar="EMAIL",
        help="addresses that receive the account's mail (default: the sender addresses)",
    )
    add.set_defaults(handler=_account_add)
    account.add_parser("list", help="all accounts").set_defaults(handler=_account_list)
    show = account.add_parser("show", help="one account")
    show.add_argument("account", metavar="ID|EMAIL")
    show.set_defaults(handler=_account_show)

    number = commands.add_parser("number", help="the service's fax numbers").add_subparsers(
        dest="number_command", metavar="ACTION"
    )
    number_add = number.add_parser("add", help="add a number to the inventory, optionally assigned to an account")
    number_add.add_argument("number", help="E.164, e.g. +15550100001")
    number_add.add_argument("--kind", choices=["local", "toll-free", "remote", "non-geographic"], default="local")
    number_add.add_argument("--account", type=int, help="account id to assign it to")
    number_add.set_defaults(handler=_number_add)
    number.add_parser("list", help="all numbers").set_defaults(handler=_number_list)

    jobs = commands.add_parser("jobs", help="the job queue").add_subparsers(dest="jobs_command", metavar="ACTION")
    jobs_list = jobs.add_parser("list", help="newest jobs first")
    jobs_list.add_argument("--queue")
    jobs_list.add_argument("--state", choices=JOB_STATES)
    jobs_list.add_argument("--limit", type=int, default=50)
    jobs_list.set_defaults(handler=_jobs_list)
    jobs_show = jobs.add_parser("show", help="one job, with its error if it stopped")
    jobs_show.add_argument("job_id")
    jobs_show.set_defaults(handler=_jobs_show)
    jobs_retry = jobs.add_parser("retry", help="queue a failed or rejected job again")
    jobs_retry.add_argument("job_id")
    jobs_retry.set_defaults(handler=_jobs_retry)

    commands.add_parser("render", help="render documents to a fax TIFF (see `faxbridge render --help`)")
    groups = CommandGroups(commands, {"account": account, "number": number, "jobs": jobs})
    for plugged in COMPONENTS:  # each component adds its own commands (bridge/components.py)
        plugged.component.add_commands(groups)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from bridge.app import App
    from bridge.core import eventloop

    try:
        eventloop.run(App(settings).run_until_stopped())
    except SettingsError as error:
        print(f"faxbridge: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"faxbridge: cannot start: {error}", file=sys.stderr)
        return 1
    return 0




def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    try:
        schema.upgrade(settings.database.url)
    except schema.SchemaError as error:
        print(f"faxbridge: {error}", file=sys.stderr)
        return 1
    print(f"database at revision {schema.current_revision(settings.database.url)}")
    return 0


def _db_revision(settings: Settings, args: argparse.Namespace) -> int:
    made = schema.make_revision(settings.database.url, args.message)
    print(f"new migration {made}: read it through before committing it")
    return 0


def _account_add(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            account = await create_account(
                tx,
                senders=args.emails,
                deliveries=args.deliver_to,
                plan=args.plan or settings.accounts.default_plan,
                name=args.name,
                pin=args.pin,
            )
        print(f"account {account.id} ({account.plan}): {', '.join(account.sender_addresses())}")
        return 0

    return with_db(settings.database, work)


def _describe_account(account: Account, holds: Sequence[AccountHold] = ()) -> str:
    numbers = ", ".join(n.e164 for n in account.numbers) or "-"
    return (
        f"account {account.id}  {account.name or '(no name)'}\n"
        f"  plan:      {account.plan}\n"
        f"  state:     {account.state}\n"
        + "".join(f"  hold:      {describe_hold(hold)}\n" for hold in holds) +
        f"  senders:   {', '.join(account.sender_addresses())}\n"
        f"  delivery:  {', '.join(account.delivery_addresses())}\n"
        f"  numbers:   {numbers}\n"
        f"  PIN set:   {'yes' if account.pin_hash else 'no'}\n"
        f"  created:   {account.created_at:%Y-%m-%d %H:%M} UTC"
    )


def _account_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            accounts = (await session.scalars(select(Account).order_by(Account.id))).all()
            for account in accounts:
                print(f"{account.id:>5}  {account.plan:<9} {account.state:<9} {', '.join(account.sender_addresses())}")
        if not accounts:
            print("no accounts yet: faxbridge account add you@example.com")
        return 0

    return with_db(settings.database, work)


def _account_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            if args.account.isdigit():
                account = await session.get(Account, int(args.account))
            else:
                account = await account_for_sender(session, args.account)
            if account is None:
                raise CommandError(f"no account {args.account}")
            print(_describe_account(account, await open_holds(session, account.id)))
        return 0

    return with_db(settings.database, work)


def _number_add(settings: Settings, args: argparse.Namespace) -> int:
    try:
        parsed = phonenumbers.parse(args.number, settings.service.default_region)
    except phonenumbers.NumberParseException as error:
        raise CommandError(f"{args.number} is not a phone number: {error}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise CommandError(f"{args.number} cannot be a phone number (wrong length)")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    async def work(db: Database) -> int:
        async with db.transaction() as tx:
            if await tx.scalar(select(FaxNumber).where(FaxNumber.e164 == e164)):
                raise CommandError(f"{e164} is already in the inventory")
            if args.account is not None and await tx.get(Account, args.account) is None:
                raise CommandError(f"no account {args.account}")
            tx.add(
                FaxNumber(
                    e164=e164,
                    kind=args.kind,
                    account_id=args.account,
                    state="assigned" if args.account is not None else "available",
                )
            )
        holder = f"assigned to account {args.account}" if args.account is not None else "available"
        print(f"{e164} ({args.kind}) {holder}")
        return 0

    return with_db(settings.database, work)


def _number_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            for number in (await session.scalars(select(FaxNumber).order_by(FaxNumber.e164))).all():
                holder = str(number.account_id) if number.account_id is not None else "-"
                print(f"{number.e164:<16} {number.kind:<15} {number.state:<10} account {holder}")
        return 0

    return with_db(settings.database, work)


def _jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        query = select(Job).order_by(Job.created_at.desc()).limit(args.limit)
        if args.queue:
            query = query.where(Job.queue == args.queue)
        if args.state:
            query = query.where(Job.state == args.state)
        async with db.reading() as session:
            jobs = (await session.scalars(query)).all()
        for job in jobs:
            note = (job.last_error or "").strip().splitlines()[-1:] or [""]
            print(
                f"{job.id:<24} {job.queue:<9} {job.state:<8} {job.stage or '-':<13} "
                f"{job.created_at:%Y-%m-%d %H:%M:%S}  {note[0][:60]}"
            )
        return 0

    return with_db(settings.database, work)


def _jobs_show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            job = await session.get(Job, args.job_id)
        if job is None:
            raise CommandError(f"no job {args.job_id}")
        print(f"job {job.id}")
        print(f"  queue:      {job.queue}")
        print(f"  state:      {job.state}")
        print(f"  stage:      {job.stage or '-'}")
        print(f"  steps done: {', '.join(job.steps_done) or '-'}")
        print(f"  attempts:   {job.attempts}")
        print(f"  created:    {job.created_at:%Y-%m-%d %H:%M:%S} UTC")
        print(f"  updated:    {job.updated_at:%Y-%m-%d %H:%M:%S} UTC")
        if job.rule:
            print(f"  rule:       {job.rule}")
        if job.last_error:
            print("  error:")
            for line in job.last_error.rstrip().splitlines():
                print(f"    {line}")
        print("  payload:")
        for line in json.dumps(job.payload, indent=2, ensure_ascii=False).splitlines():
            print(f"    {line}")
        return 0

    return with_db(settings.database, work)


def _jobs_retry(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        queue = JobQueue(db, lease_seconds=settings.queue.lease_seconds)
        try:
            job = await queue.retry(args.job_id)
        except KeyError:
            raise CommandError(f"no job {args.job_id}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        print(
            f"job {job.id} queued again on {job.queue}; "
            f"a running server picks it up within {settings.queue.poll_seconds:g} s"
        )
        return 0

    return with_db(settings.database, work)


if __name__ == "__main__":
    sys.exit(main())
