"""The outbox: every mail the service sends is stored, then queued, in one transaction.

Where it sits: steps and runners that tell a customer something (rejections, receipts,
notices) call `Outbox.enqueue(tx, message, kind=...)` inside their own transaction, naming
one of the kinds of bridge.mail.kinds (the registry the mail tests check); the mail
runner (`bridge.mail.transports`) delivers from the `mail` queue. The .eml is fsynced into the
spool before the queue row commits, so a notice is never lost and never half-written.
A caller that must not hold its transaction open while a large mail is signed and
written (inbound fax delivery) has `MailStore.store` write it first, outside (even in
another process), and calls `queue_stored` inside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core.ids import new_id
from bridge.core.queue import JobQueue
from bridge.core.spool import Spool, write_durably
from bridge.mail.dkim import DkimSigner, load_or_create_signer
from bridge.mail.jobs import QUEUE_MAIL, OutgoingMail
from bridge.mail.kinds import MailKind
from bridge.mail.mime import FaxMail
from bridge.mail.settings import DkimSettings


class MailStore:
    """The half of the outbox that needs no database: sign a mail and write it to the
    spool, durably. Picklable (with its signer), so worker processes can do it
    (bridge.inbound.workpool)."""

    def __init__(self, spool: Spool, *, mail_domain: str, signer: Callable[[bytes], bytes] | None = None) -> None:
        self.spool = spool
        self.mail_domain = mail_domain
        # DKIM (bridge.mail.dkim): chosen once by the composition root, before anything
        # is stored; None when [dkim] is off.
        self.signer = signer

    def store(
        self,
        message: EmailMessage | FaxMail,
        *,
        kind: MailKind,
        about_job: str | None = None,
        mail_id: str | None = None,
        sync: bool = True,
    ) -> StoredMail:
        """Sign and write `message` to the spool, durably, without queueing it (blocking:
        run it in a thread). `Outbox.queue_stored` queues it, in the caller's transaction.

        A caller that may store the same mail again after a crash (a step run twice)
        passes its own `mail_id`: the second run replaces the first file instead of
        leaving an orphan beside it. A fax mail comes as a bridge.mail.mime.FaxMail, which
        writes itself faster than `email` would. With `sync=False` the caller fsyncs the
        file and the spool's outgoing directory itself before it queues the mail (the
        inbound runner does, for a whole batch at once).
        """
        mail_id = mail_id or new_id("M")
        if "Message-ID" not in message:
            message["Message-ID"] = make_msgid(idstring=mail_id, domain=self.mail_domain)
        if "Date" not in message:
            message["Date"] = formatdate(localtime=False, usegmt=True)
        rcpt_tos = [address for _, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))
                    if address]
        mail_from = getaddresses([message.get("Return-Path") or message.get("From") or ""])[0][1]
        # Return-Path names the envelope sender (VERP); the final delivery adds it as a
        # header (RFC 5321 4.4), so it is not sent.
        del message["Return-Path"]
        path = self.spool.outgoing_path(mail_id)
        data = message.as_bytes()
        if self.signer is not None:
            data = self.signer(data)  # signed as stored: nothing changes the bytes later
        write_durably(path, data, sync_directory=sync, sync_file=sync)
        return StoredMail(
            mail_id=mail_id,
            mail=OutgoingMail(mail_from=mail_from, rcpt_tos=rcpt_tos, eml_path=str(path), kind=kind,
                              about_job=about_job),
        )


class Outbox:
    def __init__(
        self, spool: Spool, queue: JobQueue, *, mail_domain: str, signer: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.queue = queue
        self.mails = MailStore(spool, mail_domain=mail_domain, signer=signer)

    async def enqueue(
        self, tx: AsyncSession, message: EmailMessage, *, kind: MailKind, about_job: str | None = None
    ) -> str:
        """Store `message` and queue it for delivery when `tx` commits; returns its id."""
        stored = await asyncio.to_thread(self.mails.store, message, kind=kind, about_job=about_job)
        self.queue_stored(tx, stored)
        return stored.mail_id

    def queue_stored(self, tx: AsyncSession, stored: StoredMail) -> None:
        """Queue a stored mail (MailStore.store) for delivery when `tx` commits."""
        JobQueue.add(tx, QUEUE_MAIL, stored.mail, job_id=stored.mail_id)
        event.listen(tx.sync_session, "after_commit", lambda _session: self.queue.wake(QUEUE_MAIL), once=True)


class StoredMail(BaseModel):
    """A mail written (and signed) in the spool, not yet queued."""

    model_config = ConfigDict(extra="forbid")

    mail_id: str
    mail: OutgoingMail


def signed_outbox(
    spool: Spool, queue: JobQueue, *, dkim: DkimSettings, var_dir: Path, mail_domain: str
) -> tuple[Outbox, DkimSigner | None]:
    """The outbox whose every mail is DKIM-signed as [dkim] says (keys read, or made on
    the first start; blocking), and its signer (None when [dkim] is off). The server and
    every command that sends mail use this one way to make an outbox."""
    signer = load_or_create_signer(dkim, var_dir=var_dir, default_domain=mail_domain) if dkim.enabled else None
    outbox = Outbox(spool, queue, mail_domain=mail_domain, signer=signer.sign if signer is not None else None)
    return outbox, signer
