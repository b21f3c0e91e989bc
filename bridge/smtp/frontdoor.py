"""The SMTP front door: listeners, TLS, AUTH, and the hooks that validate and enqueue.

Where it sits: first stop of every fax submission. aiosmtpd serves each configured
listener on the app's own event loop (`loop.create_server`, not aiosmtpd's threaded
controller). The hooks decide everything they can as early as they can:
  * RCPT: the recipient grammar (`bridge.smtp.recipients`) and the recipient limit;
  * DATA: the sender check (R-ACCT-3, `bridge.accounts.senders.SenderCheck`), then durable
    intake (`bridge.outbound.intake`); the 250 is given only after the message is stored.
Rendering, billing and sending never happen here (STYLE 3). An internal error answers
451 4.3.0, never 500. Every reply goes out through `statuses.with_enhanced_code`, so
aiosmtpd's own replies carry an enhanced code too (RFC 2034, RFC 3463).

aiosmtpd is pinned to its 1.4 series (pyproject.toml): `FaxbridgeSMTP` overrides what
1.4 offers subclasses (the `_create_envelope` factory, `push`, `smtp_*` commands, `auth_*`
mechanisms), and its DATA reader, in place of aiosmtpd's, reads the `_reader` stream
aiosmtpd keeps, with asyncio's public StreamReader API only.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping, Sequence
from email import policy
from email.parser import BytesHeaderParser
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from bridge.accounts.senders import SenderCheck, SenderRefused, login_matches
from bridge.core.component import ServiceMailHandler
from bridge.core.db import Database
from bridge.core.logcontext import current_job
from bridge.outbound.intake import DurableIntake, Submitted
from bridge.smtp import statuses
from bridge.smtp.recipients import RecipientGrammar, RecipientRefused, ServiceRecipient
from bridge.smtp.settings import ListenerSettings, SmtpSettings

log = logging.getLogger("bridge.smtp")

# compat32: only From: and Message-ID: are read here, as raw text; the modern policy's
# header objects cost more than the rest of DATA handling (the parse step reads the
# whole message properly later).
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)


def _header_block(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n")
    if end < 0:
        end = content.find(b"\n\n")
    return content if end < 0 else content[: end + 2]


class FaxEnvelope(Envelope):
    """aiosmtpd's envelope with what the RCPT hook made of the recipients: the distinct
    fax numbers (E.164, in the order given) or the service addresses, never both."""

    def __init__(self) -> None:
        super().__init__()
        self.fax_numbers: list[str] = []
        self.service_rcpts: list[ServiceRecipient] = []


def fax_envelope(envelope: Envelope) -> FaxEnvelope:
    """The hooks' envelope as the FaxEnvelope `FaxbridgeSMTP` made for the transaction;
    any other is a wiring error (IntakeHandler served by a plain aiosmtpd SMTP)."""
    if not isinstance(envelope, FaxEnvelope):
        raise TypeError(f"IntakeHandler needs FaxbridgeSMTP's envelopes, not {type(envelope).__name__}")
    return envelope


class IntakeHandler:
    """aiosmtpd hooks for one listener."""

    def __init__(
        self,
        listener: ListenerSettings,
        settings: SmtpSettings,
        grammar: RecipientGrammar,
        senders: SenderCheck,
        intake: DurableIntake,
        service_handlers: Mapping[str, ServiceMailHandler] | None = None,
    ) -> None:
        self.listener = listener
        self.settings = settings
        self.grammar = grammar
        self.senders = senders
        self.intake = intake
        self.service_handlers = dict(service_handlers or {})
        self.accepting = True

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if not self.accepting:
            return statuses.ERR_421_SHUTTING_DOWN
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return statuses.OK_SENDER

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        fax = fax_envelope(envelope)
        if len(fax.rcpt_tos) >= self.settings.max_recipients:
            return statuses.ERR_452_TOO_MANY_RECIPIENTS.format(limit=self.settings.max_recipients)
        try:
            recipient = self.grammar.resolve(address)
        except RecipientRefused as refusal:
            log.info("RCPT %s refused: %s", address, refusal.status)
            return refusal.status
        if isinstance(recipient, ServiceRecipient):
            if fax.fax_numbers:
                return statuses.ERR_452_SEPARATE_MESSAGES
            fax.rcpt_tos.append(address)
            fax.service_rcpts.append(recipient)
            return statuses.OK_RECIPIENT
        if fax.service_rcpts:
            return statuses.ERR_452_SEPARATE_MESSAGES
        fax.rcpt_tos.append(address)
        fax.rcpt_options.extend(rcpt_options)
        if recipient.e164 not in fax.fax_numbers:
            fax.fax_numbers.append(recipient.e164)
        return statuses.OK_RECIPIENT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.accepting:
            return statuses.ERR_421_SHUTTING_DOWN
        fax = fax_envelope(envelope)
        content = fax.original_content or b""
        if fax.service_rcpts:
            return await self._to_service_addresses(fax.service_rcpts, fax.mail_from or "", content)
        headers = _HEADER_PARSER.parsebytes(_header_block(content))
        login = _login_of(session)
        try:
            identity = await self.senders.check(
                envelope.mail_from or "", _header_text(headers, "From"), login
            )
        except SenderRefused as refusal:
            log.info("DATA from %s refused: %s", envelope.mail_from, refusal.reason)
            return statuses.ERR_550_SENDER.format(reason=refusal.reason)
        submitted = Submitted(
            envelope_from=envelope.mail_from or "",
            recipients=tuple(fax.fax_numbers),
            content=content,
            identity=identity,
            message_id=_header_text(headers, "Message-ID") or "",
            peer=_peer(session),
            listener=self.listener.name,
            auth_login=login,
        )
        try:
            accepted = await self.intake.accept(submitted)
        except Exception:
            log.exception("could not store a message from %s", envelope.mail_from)
            return statuses.ERR_451_STORAGE
        token = current_job.set(accepted.queue_id)
        try:
            if accepted.duplicate:
                log.info("duplicate of %s from %s acknowledged", accepted.queue_id, envelope.mail_from)
                return statuses.OK_DUPLICATE.format(queue_id=accepted.queue_id)
            log.info(
                "queued: %s -> %s, %d bytes",
                envelope.mail_from,
                " ".join(submitted.recipients),
                len(content),
            )
            return statuses.OK_QUEUED.format(queue_id=accepted.queue_id)
        finally:
            current_job.reset(token)

    async def _to_service_addresses(
        self, recipients: list[ServiceRecipient], envelope_from: str, content: bytes
    ) -> str:
        """Hand the message to each service address's handler; the first refusal wins,
        so the sender learns about it (a message to one service address is the norm)."""
        reply = statuses.OK_SERVICE
        for recipient in recipients:
            reply = await self.service_handlers[recipient.service].handle(recipient, envelope_from, content)
            if not reply.startswith("2"):
                return reply
        return reply

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error", exc_info=error)
        return statuses.ERR_451_INTERNAL


def _header_text(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
    except Exception:  # a malformed header must not cost the session: treat as absent
        log.info("unreadable %s header", name, exc_info=True)
        return None
    return None if value is None else str(value).strip()


def _login_of(session: Session) -> str | None:
    if not session.authenticated or session.login_data is None:
        return None
    login = session.login_data
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else str(login)


def _peer(session: Session) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _capture_credentials(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """aiosmtpd's authenticator is synchronous; it only hands the decoded credentials
    back, and `FaxbridgeSMTP` verifies them asynchronously (the PIN hash is slow)."""
    return AuthResult(success=True, handled=False, auth_data=auth_data)


END_OF_DATA = b"\r\n.\r\n"


class FaxbridgeSMTP(SMTP):
    """aiosmtpd's protocol with async credential checks, enhanced status codes on every
    reply, typed envelopes and a DATA reader that reads in pieces instead of line by line.

    aiosmtpd 1.4's DATA loop awaits every line of the message separately, which makes
    it the busiest code of the whole intake (TOOLING.md: one core saturated by it). This
    reader looks for ".\r\n" and checks the line end before it, so a 50 KB message
    costs a few awaits instead of ~700. It keeps aiosmtpd 1.4.6's rules: only
    <CRLF>.<CRLF> ends the data (no bare-LF "smuggling"), lines over 1000 octets are
    refused (500), the size limit is enforced after the data is read (552), and
    dot-stuffing is undone (RFC 5321 4.5.2).
    """

    def __init__(self, handler: IntakeHandler, *, db: Database, **kwargs: Any) -> None:
        super().__init__(handler, authenticator=_capture_credentials, **kwargs)
        self._intake = handler
        self._db = db
        # RFC 2034 3: the greeting and the answer to HELO/EHLO carry no enhanced code
        # (EHLO's lines are its extensions); every other 2xx, 4xx and 5xx reply does.
        self._greeted = False
        self._answering_hello = False

    def _create_envelope(self) -> FaxEnvelope:
        # aiosmtpd's factory for each transaction's envelope, meant for subclasses.
        return FaxEnvelope()

    async def push(self, status: AnyStr) -> None:
        """Send a reply; a text reply goes through `statuses.with_enhanced_code`."""
        if isinstance(status, str) and self._greeted and not (
            self._answering_hello and status.startswith("2")
        ):
            if status.startswith("552 "):
                # 552 is "exceeded storage allocation" (RFC 5321 4.2.2): here only ever
                # the size limit (MAIL's SIZE=, or DATA), and the sender is told it.
                status = statuses.ERR_552_TOO_BIG.format(limit=self.data_size_limit)
            status = statuses.with_enhanced_code(status)
        # The first reply of a session is the greeting (RFC 5321 4.3.1).
        self._greeted = True
        await super().push(status)

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._answering_hello = False

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._answering_hello = False

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:
        # RFC 3207 4.2: no TLS session inside another; aiosmtpd 1.4 would answer 220 and
        # try a second handshake on the encrypted stream (also on the implicit-TLS port).
        if self.transport is not None and self.transport.get_extra_info("ssl_object") is not None:
            await self.push(statuses.ERR_503_TLS_ACTIVE)
            return
        await super().smtp_STARTTLS(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(statuses.ERR_503_NEED_RCPT)
            return
        if arg:
            await self.push(statuses.ERR_501_DATA_SYNTAX)
            return
        await self.push(statuses.GO_AHEAD_DATA)
        read = await self._read_data()
        if read is None:
            return  # the client went away mid-DATA
        received, too_big = read
        envelope, self.envelope = self.envelope, self._create_envelope()  # the next transaction's
        if too_big:
            await self.push(statuses.ERR_552_TOO_BIG.format(limit=self.data_size_limit))
            return
        content = bytes(received[:-3])  # drop the final ".\r\n", keep the line's CRLF
        if content and max(map(len, content.split(b"\r\n"))) > self.line_length_limit - 2:
            await self.push(statuses.ERR_500_LINE_TOO_LONG)
            return
        if content.startswith(b"."):
            content = content[1:]
        content = content.replace(b"\r\n.", b"\r\n")
        envelope.content = content
        envelope.original_content = content
        assert self.session is not None
        await self.push(await self._intake.handle_DATA(self, self.session, envelope))

    async def _read_data(self) -> tuple[bytearray, bool] | None:
        """The DATA octets up to and including CRLF.CRLF, and whether they passed the
        size limit (then only their last octets are kept, the rest is read and dropped);
        None if the connection closed.

        Only the public StreamReader API, and never a byte past the end of data: with
        pipelining the next command may follow the final CRLF.CRLF in the same packet,
        and aiosmtpd's command loop reads it from this reader. `readuntil` stops right
        after the separator; when the separator is not within the stream limit
        (aiosmtpd's line_length_limit, 1001), it raises LimitOverrunError whose
        `consumed` octets cannot hold the start of a separator, and `readexactly` takes
        them. So a message costs an await or two per piece the transport delivered.
        """
        reader = self._reader
        limit = self.data_size_limit
        received = bytearray()
        total = 0
        too_big = False
        try:
            while True:
                try:
                    piece = await reader.readuntil(b".\r\n")
                except asyncio.LimitOverrunError as overrun:
                    piece = await reader.readexactly(overrun.consumed)
                total += len(piece)
                received += piece
                if not too_big and limit and total > limit + 3:
                    too_big = True
                if too_big:
                    del received[:-5]  # enough to see the end of data
                if piece.endswith(b".\r\n") and (total == 3 or received.endswith(END_OF_DATA)):
                    return received, too_big
        except asyncio.IncompleteReadError:
            log.info("connection closed during DATA")
            if self.transport is not None:
                self.transport.close()
            return None

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._verify(await super().auth_LOGIN(_, args))

    async def _verify(self, result: AuthResult) -> AuthResult:
        if not result.success or not isinstance(result.auth_data, LoginPassword):
            return result
        login = result.auth_data.login.decode("utf-8", "replace")
        pin = result.auth_data.password.decode("utf-8", "replace")
        if await login_matches(self._db, login, pin):
            log.info("AUTH ok for %s", login)
            return AuthResult(success=True, handled=False, auth_data=result.auth_data)
        log.info("AUTH failed for %s", login)
        return AuthResult(success=False, handled=False, message=statuses.ERR_535_AUTH_FAILED)


def make_protocol_factory(
    listener: ListenerSettings,
    settings: SmtpSettings,
    handler: IntakeHandler,
    db: Database,
    starttls_context: ssl.SSLContext | None,
) -> Callable[[], FaxbridgeSMTP]:
    offers_auth = listener.auth != "none"
    implicit = listener.tls == "implicit"
    kwargs: dict[str, Any] = dict(
        hostname=settings.hostname,
        # The greeting names the service, not the library and its version.
        ident="faxbridge ESMTP",
        data_size_limit=settings.max_message_size,
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=settings.timeout,
        tls_context=starttls_context if (listener.starttls and not implicit) else None,
        require_starttls=listener.require_tls and not implicit,
        # On an implicit-TLS port the whole session is encrypted, but aiosmtpd only
        # knows about STARTTLS: let it offer AUTH there (TOOLING.md).
        auth_require_tls=not implicit,
        auth_required=listener.auth == "required",
        auth_exclude_mechanism=[] if offers_auth else ["PLAIN", "LOGIN"],
    )

    def factory() -> FaxbridgeSMTP:
        return FaxbridgeSMTP(handler, db=db, **kwargs)

    return factory


class SmtpFrontDoor:
    """All configured listeners; `start()` binds them, `stop_accepting()` closes them."""

    def __init__(
        self, settings: SmtpSettings, handlers: Sequence[IntakeHandler], db: Database, tls: ssl.SSLContext | None
    ) -> None:
        self.settings = settings
        self.handlers = list(handlers)
        self.db = db
        self.tls = tls
        self.servers: list[asyncio.Server] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for handler in self.handlers:
            listener = handler.listener
            factory = make_protocol_factory(listener, self.settings, handler, self.db, self.tls)
            server = await loop.create_server(
                factory,
                host=listener.host,
                port=listener.port,
                ssl=self.tls if listener.tls == "implicit" else None,
                reuse_address=True,
            )
            self.servers.append(server)
            port = server.sockets[0].getsockname()[1]
            log.info(
                "listening: %s on %s:%d (tls=%s, starttls=%s, auth=%s)",
                listener.name, listener.host, port, listener.tls, listener.starttls, listener.auth,
            )

    def bound_ports(self) -> dict[str, int]:
        return {
            handler.listener.name: server.sockets[0].getsockname()[1]
            for handler, server in zip(self.handlers, self.servers, strict=True)
        }

    async def stop_accepting(self) -> None:
        """Close the listening sockets and refuse new transactions in open sessions."""
        for handler in self.handlers:
            handler.accepting = False
        for server in self.servers:
            server.close()
        for server in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=1)
            except TimeoutError:
                pass  # open sessions finish on their own; they get 421 for new mail
