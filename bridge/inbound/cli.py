"""`faxbridge dkim ...` and `faxbridge inbound ...`: keys to publish, the message
center, the junk filter and the retention purge, from the command line.

Where it sits: listed in `bridge.cli.CLI_EXTENSIONS`; works on the database and files
the server uses, so it can run beside a running server.

    faxbridge dkim keygen                     make missing keys; print DNS records (DKIM, SPF, DMARC)
    faxbridge inbound list ACCOUNT            the account's received faxes (R-STORE-1)
    faxbridge inbound export ACCOUNT FAX OUT  copy one fax's PDF (or TIFF) to OUT
    faxbridge inbound block ACCOUNT (--caller +E164 | --station TEXT)   junk filter
    faxbridge inbound purge                   run the retention purge now (R-STORE-1/2)
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bridge.accounts.senders import existing_account
from bridge.core.cli import CommandError, with_db
from bridge.core.db import Database
from bridge.inbound.models import BlockedSender, InboundFaxRecord
from bridge.inbound.retention import Retention
from bridge.mail.dkim import load_or_create_signer

if TYPE_CHECKING:
    from bridge.settings import Settings


def extend(commands: Any, groups: dict[str, Any]) -> None:
    dkim = commands.add_parser("dkim", help="DKIM keys").add_subparsers(dest="dkim_command", metavar="ACTION")
    keygen = dkim.add_parser("keygen", help="create missing keys and print the DNS records to publish")
    keygen.set_defaults(handler=_keygen)

    inbound = commands.add_parser("inbound", help="received faxes").add_subparsers(
        dest="inbound_command", metavar="ACTION")
    listing = inbound.add_parser("list", help="an account's received faxes, newest first")
    listing.add_argument("account_id", type=int, metavar="ACCOUNT")
    listing.set_defaults(handler=_list)
    export = inbound.add_parser("export", help="copy a received fax out of the message center")
    export.add_argument("account_id", type=int, metavar="ACCOUNT")
    export.add_argument("fax_id", metavar="FAX")
    export.add_argument("out", type=Path, metavar="OUT", help="file to write (.pdf or .tif)")
    export.set_defaults(handler=_export)
    block = inbound.add_parser("block", help="junk filter: never deliver (or charge) faxes from this sender")
    block.add_argument("account_id", type=int, metavar="ACCOUNT")
    who = block.add_mutually_exclusive_group(required=True)
    who.add_argument("--caller", help="caller ID, E.164")
    who.add_argument("--station", help="sending station ID (TSI)")
    block.set_defaults(handler=_block)
    inbound.add_parser("purge", help="remove faxes past their keeping time now").set_defaults(handler=_purge)


def _keygen(settings: Settings, args: argparse.Namespace) -> int:
    signer = load_or_create_signer(settings.dkim, var_dir=settings.paths.var_dir,
                                   default_domain=settings.service.primary_domain)
    print("; publish in DNS:")
    for name, value in signer.dns_records():
        print(f'{name}. IN TXT "{value}"')
    domain = signer.domain
    print(f'{domain}. IN TXT "v=spf1 mx a -all"   ; list the hosts that relay faxbridge mail')
    print(f'_dmarc.{domain}. IN TXT "v=DMARC1; p=quarantine; adkim=s; aspf=r; rua=mailto:postmaster@{domain}"')
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        await existing_account(db, args.account_id)
        async with db.reading() as session:
            rows = (await session.scalars(
                select(InboundFaxRecord).where(InboundFaxRecord.account_id == args.account_id)
                .order_by(InboundFaxRecord.received_at.desc())
            )).all()
        for row in rows:
            kept = "purged" if row.purged_at else "kept"
            print(f"{row.id}  {row.received_at:%Y-%m-%d %H:%M} UTC  from {row.caller_number or 'unknown':<16} "
                  f"{row.pages:>3} page(s)  {row.state:<13} {kept}")
        return 0

    return with_db(settings.database, work)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        async with db.reading() as session:
            row = await session.get(InboundFaxRecord, args.fax_id)
        if row is None or row.account_id != args.account_id:
            raise CommandError(f"account {args.account_id} has no fax {args.fax_id}")
        source = row.tiff_path if args.out.suffix.lower() in (".tif", ".tiff") else row.pdf_path
        # The file work in a thread: this runs on the event loop that holds the database.
        if not source or not await asyncio.to_thread(Path(source).exists):
            raise CommandError(f"fax {args.fax_id} is no longer kept (purged {row.purged_at or 'or never stored'})")
        await asyncio.to_thread(shutil.copyfile, source, args.out)
        print(f"wrote {args.out}")
        return 0

    return with_db(settings.database, work)


def _block(settings: Settings, args: argparse.Namespace) -> int:
    kind, value = ("caller", args.caller) if args.caller else ("station", args.station.strip())

    async def work(db: Database) -> int:
        await existing_account(db, args.account_id)
        async with db.transaction() as tx:
            exists = await tx.scalar(select(BlockedSender.id).where(
                BlockedSender.account_id == args.account_id, BlockedSender.kind == kind, BlockedSender.value == value))
            if exists is None:
                tx.add(BlockedSender(account_id=args.account_id, kind=kind, value=value))
        print(f"account {args.account_id}: faxes from {kind} {value} are blocked")
        return 0

    return with_db(settings.database, work)


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        purged = await Retention(settings.inbound, db).purge_once()
        print(f"purged {purged} fax(es)")
        return 0

    return with_db(settings.database, work)
