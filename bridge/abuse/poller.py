"""The IMAP poller: watches the abuse mailbox and feeds each new message to the pipeline.

Where it sits: the front door of `abuse mailbox (IMAP) -> abuse pipeline`. Started and
stopped by the abuse component. It connects over IMAPS (aioimaplib has no STARTTLS),
logs in, makes sure the Processed and Quarantine folders exist, selects the mailbox
and then loops: read every message in it, file each, wait with IDLE (or, on a server
without IDLE, sleep `abuse.poll_seconds`) until something arrives, read again.

Exactly once (issue 7): a message is fetched with BODY.PEEK (it stays unseen), then the
pipeline commits its report together with the cursor (UIDVALIDITY, last UID); only
then is it flagged and moved to Processed (or Quarantine). A message still in the
mailbox that the database already knows (by UIDVALIDITY+UID, or by content after a
UIDVALIDITY change) is only moved. A lost connection, a server restart or an error
reconnects with exponential backoff between `reconnect_min_seconds` and
`reconnect_max_seconds`; nothing read but not committed is lost, since it is still in
the mailbox.

Hostile input: a message larger than `abuse.max_message_bytes` (by RFC822.SIZE) is
quarantined without being downloaded; everything else is the pipeline's to judge.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import ssl
from collections.abc import Awaitable
from typing import TypeVar

import aioimaplib

from bridge.abuse import cases
from bridge.abuse.jobs import AbuseContext, AbuseJob
from bridge.abuse.pipeline import AbusePipeline
from bridge.core.ids import new_id

log = logging.getLogger("bridge.abuse.poller")

T = TypeVar("T")

# Messages fetched per round trip; small enough that a batch of large ones stays cheap.
FETCH_BATCH = 20
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_ITEM = re.compile(rb"UID (\d+)")
_SIZE_ITEM = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapFailure(Exception):
    """The server refused a command or the connection is gone: reconnect."""


class AbusePoller:
    def __init__(self, context: AbuseContext, pipeline: AbusePipeline) -> None:
        self.context = context
        self.pipeline = pipeline
        self.settings = context.abuse
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: aioimaplib.IMAP4 | None = None
        # Observability for tests, the benchmark and logs.
        self.connections = 0
        self.processed = 0
        self.idle_wakeups = 0
        self.uidvalidity: int | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="abuse-poller")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop after the message in hand (its transaction commits or rolls back whole)."""
        self._stopping.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        delay = self.settings.reconnect_min_seconds
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = self.settings.reconnect_min_seconds
            except asyncio.CancelledError:
                raise
            except (ImapFailure, aioimaplib.AioImapException, OSError, TimeoutError, ssl.SSLError) as error:
                log.warning("abuse mailbox: %s; reconnecting in %.1f s", error or type(error).__name__, delay)
            except Exception:
                # Never let the poller die: the mailbox is the only way reports come in.
                log.exception("abuse mailbox: unexpected error; reconnecting in %.1f s", delay)
            finally:
                await self._disconnect()
            if self._stopping.is_set():
                break
            await self._wait(self._stopping.wait(), delay)
            delay = min(delay * 2, self.settings.reconnect_max_seconds)

    # --- one connection -----------------------------------------------------------------
    async def _session(self) -> None:
        s = self.settings
        self._lost.clear()
        client = aioimaplib.IMAP4(
            host=s.imap_host,
            port=s.imap_port,
            timeout=s.imap_timeout_seconds,
            conn_lost_cb=lambda _exc: self._lost.set(),
            ssl_context=_tls_context(s.imap_tls_verify),
        )
        self._client = client
        await self._guard(client.wait_hello_from_server())
        password = s.imap_password or os.environ.get(s.imap_password_env, "")
        _ok(await self._guard(client.login(s.imap_user, password)), "LOGIN")
        # Capabilities grow after login (MOVE, UIDPLUS, ...); aioimaplib read them before.
        await self._guard(client.protocol.capability())
        for folder in (s.processed_folder, s.quarantine_folder):
            response = await self._guard(client.create(folder))
            if response.result != "OK" and b"ALREADYEXISTS" not in b" ".join(_bytes_lines(response)).upper():
                raise ImapFailure(f"cannot create folder {folder}: {_text(response)}")
        selected = await self._guard(client.select(s.mailbox))
        _ok(selected, f"SELECT {s.mailbox}")
        uidvalidity = _uidvalidity(selected)
        self.uidvalidity = uidvalidity
        await cases.open_mailbox(self.context, s.mailbox, uidvalidity)
        self.connections += 1
        log.info(
            "abuse mailbox %s@%s:%d/%s open (UIDVALIDITY %d)",
            s.imap_user, s.imap_host, s.imap_port, s.mailbox, uidvalidity,
        )
        while not self._stopping.is_set():
            await self._drain(client, uidvalidity)
            if self._stopping.is_set():
                return
            await self._wait_for_mail(client)

    async def _drain(self, client: aioimaplib.IMAP4, uidvalidity: int) -> None:
        """Process and file every message now in the mailbox."""
        while not self._stopping.is_set():
            response = await self._guard(client.uid_search("ALL", charset=None))
            _ok(response, "UID SEARCH")
            uids = [
                int(u)
                for line in _bytes_lines(response)
                if line.startswith(b"SEARCH") or line[:1].isdigit()
                for u in line.replace(b"SEARCH", b"").split()
                if u.isdigit()
            ]
            if not uids:
                return
            for start in range(0, len(uids), FETCH_BATCH):
                if self._stopping.is_set():
                    return
                await self._batch(client, uidvalidity, uids[start : start + FETCH_BATCH])

    async def _batch(self, client: aioimaplib.IMAP4, uidvalidity: int, uids: list[int]) -> None:
        s = self.settings
        filed: dict[str, list[int]] = {s.processed_folder: [], s.quarantine_folder: []}
        fresh: list[int] = []
        # Messages already processed (a crash or a lost connection before the move).
        async with self.context.db.reading() as session:
            for uid in uids:
                known = await cases.known_by_uid(session, s.mailbox, uidvalidity, uid)
                if known is not None:
                    filed[_folder_of(known.outcome, s.processed_folder, s.quarantine_folder)].append(uid)
                else:
                    fresh.append(uid)
        if fresh:
            sizes = await self._sizes(client, fresh)
            small = [uid for uid in fresh if sizes.get(uid, 0) <= s.max_message_bytes]
            bodies = await self._bodies(client, small) if small else {}
            for uid in fresh:
                if self._stopping.is_set():
                    break
                folder = await self._process(uidvalidity, uid, sizes.get(uid), bodies.get(uid))
                if folder:
                    filed[folder].append(uid)
        for folder, done in filed.items():
            if done:
                await self._file(client, done, folder)

    async def _process(self, uidvalidity: int, uid: int, size: int | None, raw: bytes | None) -> str | None:
        s = self.settings
        if raw is None and size is not None and size > s.max_message_bytes:
            # Never downloaded: recorded by its size alone.
            by_size = hashlib.sha256(f"{uidvalidity}:{uid}:{size}".encode()).hexdigest()
            job = AbuseJob(new_id("A"), s.mailbox, uidvalidity, uid, b"", by_size)
            await cases.record_quarantine(self.context, job, f"too large: {size} bytes (limit {s.max_message_bytes})")
            log.warning("%s (uid %d): quarantined: %d bytes", job.id, uid, size)
            self.processed += 1
            return job.filed_in
        if raw is None:
            log.warning("uid %d vanished from %s before it was read", uid, s.mailbox)
            return None
        sha256 = hashlib.sha256(raw).hexdigest()
        async with self.context.db.reading() as session:
            same = await cases.known_by_content(session, sha256)
        if same is not None:
            log.info("uid %d is report %s again (same content); filing it, not acting twice", uid, same.id)
            return _folder_of(same.outcome, s.processed_folder, s.quarantine_folder)
        job = AbuseJob(new_id("A"), s.mailbox, uidvalidity, uid, raw, sha256)
        await self.pipeline.process(job)
        self.processed += 1
        return job.filed_in or None

    async def _sizes(self, client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        response = await self._guard(client.uid("fetch", _uid_set(uids), "(UID RFC822.SIZE)"))
        _ok(response, "UID FETCH RFC822.SIZE")
        sizes: dict[int, int] = {}
        for line in _bytes_lines(response):
            uid, size = _FETCH_ITEM.search(line), _SIZE_ITEM.search(line)
            if uid and size:
                sizes[int(uid[1])] = int(size[1])
        return sizes

    async def _bodies(self, client: aioimaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
        response = await self._guard(client.uid("fetch", _uid_set(uids), "(UID BODY.PEEK[])"))
        _ok(response, "UID FETCH BODY.PEEK[]")
        bodies: dict[int, bytes] = {}
        pending_uid: int | None = None
        for line in response.lines:
            if isinstance(line, bytearray):
                if pending_uid is not None:
                    bodies[pending_uid] = bytes(line)
                pending_uid = None
            elif isinstance(line, bytes) and b"FETCH" in line and b"BODY[]" in line:
                uid = _FETCH_ITEM.search(line)
                pending_uid = int(uid[1]) if uid else None
        return bodies

    async def _file(self, client: aioimaplib.IMAP4, uids: list[int], folder: str) -> None:
        """Flag and move; the reports are committed already, so this may be repeated."""
        uid_set = _uid_set(uids)
        flags = r"(\Seen \Flagged)" if folder == self.settings.processed_folder else r"(\Seen)"
        _ok(await self._guard(client.uid("store", uid_set, "+FLAGS.SILENT", flags)), "UID STORE")
        if client.has_capability("MOVE"):
            _ok(await self._guard(client.uid("move", uid_set, folder)), f"UID MOVE {folder}")
        else:
            _ok(await self._guard(client.uid("copy", uid_set, folder)), f"UID COPY {folder}")
            _ok(await self._guard(client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")), "UID STORE")
            if client.has_capability("UIDPLUS"):
                _ok(await self._guard(client.uid("expunge", uid_set)), "UID EXPUNGE")
            else:
                _ok(await self._guard(client.expunge()), "EXPUNGE")
        async with self.context.db.transaction() as tx:
            from sqlalchemy import update

            from bridge.abuse.models import AbuseReport

            await tx.execute(
                update(AbuseReport)
                .where(
                    AbuseReport.mailbox == self.settings.mailbox,
                    AbuseReport.uidvalidity == self.uidvalidity,
                    AbuseReport.uid.in_(uids),
                )
                .values(filed_in=folder)
            )

    async def _wait_for_mail(self, client: aioimaplib.IMAP4) -> None:
        s = self.settings
        if not client.has_capability("IDLE"):
            await self._wait(self._stopping.wait(), s.poll_seconds)
            return
        idle = await self._guard(client.idle_start(timeout=s.idle_seconds))
        try:
            # The fallback poll: even with IDLE, look again every poll_seconds at most,
            # in case a notification was lost.
            push = await self._wait(
                client.wait_server_push(timeout=s.idle_seconds), min(s.idle_seconds, s.poll_seconds)
            )
            if push is not None:
                self.idle_wakeups += 1
        finally:
            if client.has_pending_idle() and not self._lost.is_set():
                client.idle_done()
                await self._guard(asyncio.wait_for(idle, s.imap_timeout_seconds))
            if not idle.done():
                # The connection went away with IDLE still open.
                idle.cancel()
                await asyncio.gather(idle, return_exceptions=True)
        if self._lost.is_set():
            raise ImapFailure("connection lost")

    # --- helpers ------------------------------------------------------------------------
    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Await an IMAP call, but give up at once when the connection is lost."""
        task = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ImapFailure("connection lost")

    async def _wait(self, awaitable: Awaitable[T], timeout: float) -> T | None:
        """The awaitable's result, or None after `timeout` s, on stop or on a lost connection."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stopping.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({task, stop, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for other in (stop, lost):
                other.cancel()
        if task in done and not task.cancelled() and task.exception() is None:
            return task.result()
        if task in done:
            if isinstance(task.exception(), TimeoutError):
                return None
            return task.result()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), 2)
        except (aioimaplib.AioImapException, OSError, TimeoutError):
            pass  # the connection is being dropped anyway
        transport = client.protocol.transport if client.protocol else None
        if transport is not None:
            transport.close()


def _folder_of(outcome: str, processed: str, quarantine: str) -> str:
    return quarantine if outcome == "quarantined" else processed


def _tls_context(verify: str) -> ssl.SSLContext:
    if verify == "insecure":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify == "verify":
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=verify)


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


def _bytes_lines(response: aioimaplib.Response) -> list[bytes]:
    return [bytes(line) for line in response.lines if isinstance(line, (bytes, bytearray))]


def _text(response: aioimaplib.Response) -> str:
    return " ".join(line.decode("utf-8", "replace") for line in _bytes_lines(response))[:300]


def _ok(response: aioimaplib.Response, what: str) -> None:
    if response.result != "OK":
        raise ImapFailure(f"{what} answered {response.result}: {_text(response)}")


def _uidvalidity(response: aioimaplib.Response) -> int:
    for line in _bytes_lines(response):
        match = _UIDVALIDITY.search(line)
        if match:
            return int(match[1])
    raise ImapFailure("SELECT gave no UIDVALIDITY")
