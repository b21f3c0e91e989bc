"""Delivering the service's own mail: the mail runner and its transports.

Where it sits: the last stop of every notice, receipt and inbound fax mail. The outbox
stored the message and queued a `mail` job; `MailRunner` claims it and hands it to the
configured transport:
  * `MaildirTransport` (the embedded default) writes one copy per recipient into
    `<maildir_root>/<address>/new/`, the way a local delivery agent would, so a
    developer opens the mail with any Maildir reader (mutt -f var/mail/you@example.com);
  * `SmtpRelayTransport` hands it to a relay (STARTTLS or implicit TLS, AUTH).
A relay that is down or answers 4xx is retried on `mail.retry_delays`; a 5xx answer or
`mail.give_up_after_hours` ends the job in `failed`, with the relay's reply recorded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import aiosmtplib

from bridge.core.models import Job, utcnow
from bridge.core.queue import DONE, FAILED, JobQueue
from bridge.core.runner import Runner
from bridge.core.spool import fsync_directory
from bridge.mail.jobs import QUEUE_MAIL, OutgoingMail
from bridge.mail.settings import MailSettings

log = logging.getLogger("bridge.mail")


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Protocol):
    async def deliver(self, mail_from: str, rcpt_tos: list[str], message: bytes) -> None: ...


class MaildirTransport:
    """One Maildir per recipient address under `root` (tmp/ -> new/, fsynced)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mailbox(self, address: str) -> Path:
        safe = re.sub(r"[^a-z0-9@._+-]", "_", address.lower())
        return self.root / safe

    async def deliver(self, mail_from: str, rcpt_tos: list[str], message: bytes) -> None:
        await asyncio.to_thread(self._deliver_all, mail_from, rcpt_tos, message)

    def _deliver_all(self, mail_from: str, rcpt_tos: list[str], message: bytes) -> None:
        for address in rcpt_tos:
            box = self.mailbox(address)
            for sub in ("tmp", "new", "cur"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}.P{os.getpid()}.{socket.gethostname()}"
            temporary = box / "tmp" / name
            data = b"Return-Path: <" + mail_from.encode() + b">\n" + message
            with open(temporary, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(temporary, box / "new" / name)
            fsync_directory(box / "new")


class SmtpRelayTransport:
    def __init__(self, settings: MailSettings, *, local_hostname: str) -> None:
        self.settings = settings
        self.local_hostname = local_hostname

    async def deliver(self, mail_from: str, rcpt_tos: list[str], message: bytes) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                sender=mail_from,
                recipients=rcpt_tos,
                hostname=s.relay_host,
                port=s.relay_port,
                use_tls=s.relay_tls == "implicit",
                start_tls=s.relay_tls == "starttls",
                username=s.relay_username or None,
                password=s.relay_password or None,
                local_hostname=self.local_hostname,
                timeout=60,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise DeliveryError(str(error), permanent=all(c >= 500 for c in codes)) from None
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(f"{error.code} {error.message}", permanent=error.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"relay {s.relay_host}:{s.relay_port}: {error}", permanent=False) from None


class MailRunner(Runner):
    queue_name = QUEUE_MAIL

    def __init__(
        self, queue: JobQueue, transport: MailTransport, settings: MailSettings, *, workers: int, poll_seconds: float
    ) -> None:
        super().__init__(queue, workers=workers, poll_seconds=poll_seconds)
        self.transport = transport
        self.settings = settings

    async def handle(self, job: Job) -> None:
        mail = OutgoingMail.model_validate(job.payload)
        message = await asyncio.to_thread(Path(mail.eml_path).read_bytes)
        try:
            await self.transport.deliver(mail.mail_from, mail.rcpt_tos, message)
        except DeliveryError as error:
            await self._after_failure(job, error)
            return
        async with self.queue.db.transaction() as tx:
            JobQueue.finish(await self.queue.owned(tx, job.id), DONE)
        log.info("%s mail delivered to %s", mail.kind, ", ".join(mail.rcpt_tos))

    async def _after_failure(self, job: Job, error: DeliveryError) -> None:
        age = utcnow() - job.created_at
        if error.permanent or age > timedelta(hours=self.settings.give_up_after_hours):
            log.error("mail not delivered, giving up: %s", error)
            async with self.queue.db.transaction() as tx:
                JobQueue.finish(await self.queue.owned(tx, job.id), FAILED, error=str(error))
            return
        delays = self.settings.retry_delays
        delay = delays[min(job.attempts, len(delays)) - 1]
        log.warning("mail delivery failed (%s); next try in %.0f s", error, delay)
        await self.queue.postpone(job.id, delay, str(error))


def build_transport(settings: MailSettings, *, local_hostname: str) -> MailTransport:
    """The transport `mail.transport` names: a relay over SMTP, or a local Maildir."""
    if settings.transport == "smtp":
        return SmtpRelayTransport(settings, local_hostname=local_hostname)
    return MaildirTransport(settings.maildir_root)
