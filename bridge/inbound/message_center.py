"""The message center (R-STORE-1, R-ACCT-2): a customer lists and downloads the faxes
the service keeps for them, after logging in with their email address and PIN.

Where it sits: pages the inbound component adds to the one HTTP listener (bridge.web,
config [http]), under /messages:
  GET  /messages                     the account's stored faxes, newest first
  GET  /messages/login               the login form
  POST /messages/login               email + PIN -> a session cookie
  POST /messages/logout              ends the session
  GET  /messages/faxes/<id>.pdf      one stored fax, as PDF

Security:
  * The PIN is checked against the account's slow salted hash (bridge.accounts.senders.
    verify_pin, scrypt) in a worker thread, never on the event loop; an unknown
    address costs the same hash, so timing tells nothing.
  * Failed logins are counted per address; after `http.login_max_failures` in
    `http.login_failure_window_seconds` further tries for that address answer 429
    without checking the PIN at all.
  * Login is CSRF-safe: the form carries a random token that must equal the one in a
    SameSite=Strict cookie (double submit), and a cross-site Origin is refused.
    Logout carries the session's own token.
  * The session cookie is random (256 bits), HttpOnly, SameSite=Lax, limited to
    /messages, Secure when `http.public_url` is https; sessions live in memory for
    `http.session_seconds` (a restart logs everyone out).
  * Every fax is looked up by id AND the session's account: another account's fax is
    a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import select

from bridge.accounts.models import Account, AccountAddress
from bridge.accounts.senders import hash_pin, normalise_address, verify_pin
from bridge.core.component import WebRoute
from bridge.core.db import Database
from bridge.inbound.models import InboundFaxRecord
from bridge.web.pages import html_page
from bridge.web.settings import HttpSettings

log = logging.getLogger("bridge.inbound.message_center")

SESSION_COOKIE = "fb_session"
CSRF_COOKIE = "fb_login_csrf"
PREFIX = "/messages"
# Addresses whose failures are remembered at once (oldest forgotten first): bounded
# memory whatever a guesser sends.
_MAX_TRACKED_ADDRESSES = 10_000
# A hash to spend time on when the address is unknown (made once, lazily).
_DUMMY_HASH: list[str] = []


@dataclass
class Session:
    account_id: int
    csrf: str
    expires: float


class LoginThrottle:
    """Failed logins per address in a sliding window (R-ACCT-2: PINs are short)."""

    def __init__(self, max_failures: int, window_seconds: float, clock: Callable[[], float]) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.max_failures

    def failed(self, address: str) -> None:
        times = self._failures.setdefault(address, deque())
        self._failures.move_to_end(address)
        times.append(self.clock())
        while len(self._failures) > _MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


class MessageCenter:
    def __init__(self, settings: HttpSettings, db: Database, *, service_name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.db = db
        self.service_name = service_name
        self.clock = clock
        self.secure = urlsplit(settings.public_url).scheme == "https"
        self.throttle = LoginThrottle(settings.login_max_failures, settings.login_failure_window_seconds, clock)
        self._sessions: dict[str, Session] = {}

    def routes(self) -> list[WebRoute]:
        return [
            WebRoute("GET", PREFIX, self.listing),
            WebRoute("GET", f"{PREFIX}/login", self.login_form),
            WebRoute("POST", f"{PREFIX}/login", self.login),
            WebRoute("POST", f"{PREFIX}/logout", self.logout),
            WebRoute("GET", PREFIX + "/faxes/{fax_id}.pdf", self.download),
        ]

    # --- pages -----------------------------------------------------------------------------
    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page()

    async def login(self, request: web.Request) -> web.Response:
        if not self._same_origin(request):
            return self._page("Not allowed", "<p>This form must be sent from our own page.</p>", 403)
        form = await request.post()
        csrf_field = str(form.get("csrf", ""))
        csrf_cookie = request.cookies.get(CSRF_COOKIE, "")
        if not csrf_cookie or not hmac.compare_digest(csrf_field.encode(), csrf_cookie.encode()):
            return self._login_page("Your login form had expired. Please try again.", status=403)
        address = normalise_address(str(form.get("email", "")))[:320]
        pin = str(form.get("pin", ""))[:128]
        if self.throttle.blocked(address):
            log.info("message center: login for %s refused, too many failed tries", address)
            return self._login_page("Too many failed tries for this address. Wait a few minutes, then try again.",
                                    status=429)
        account_id = await self._check(address, pin)
        if account_id is None:
            self.throttle.failed(address)
            return self._login_page("That address and PIN do not match an account.", status=401)
        self.throttle.succeeded(address)
        token = secrets.token_urlsafe(32)
        self._forget_expired()
        self._sessions[token] = Session(account_id, secrets.token_urlsafe(32),
                                        self.clock() + self.settings.session_seconds)
        response = web.HTTPSeeOther(PREFIX)
        response.set_cookie(SESSION_COOKIE, token, path=PREFIX, httponly=True, secure=self.secure, samesite="Lax",
                            max_age=int(self.settings.session_seconds))
        response.del_cookie(CSRF_COOKIE, path=PREFIX)
        log.info("message center: account %s logged in", account_id)
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        token, session = self._session(request)
        form = await request.post()
        if session is not None:
            if not hmac.compare_digest(str(form.get("csrf", "")).encode(), session.csrf.encode()):
                # Another site's form cannot log the customer out (nor in, see login).
                return self._page("Not allowed", "<p>This form must be sent from our own page.</p>", 403)
            self._sessions.pop(token, None)
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(SESSION_COOKIE, path=PREFIX)
        raise response

    async def listing(self, request: web.Request) -> web.Response:
        _, session = self._session(request)
        if session is None:
            raise web.HTTPSeeOther(f"{PREFIX}/login")
        async with self.db.reading() as db:
            account = await db.get(Account, session.account_id)
            if account is None:
                raise web.HTTPSeeOther(f"{PREFIX}/login")
            faxes = (await db.scalars(
                select(InboundFaxRecord)
                .where(InboundFaxRecord.account_id == session.account_id,
                       InboundFaxRecord.purged_at.is_(None), InboundFaxRecord.pdf_path != "")
                .order_by(InboundFaxRecord.received_at.desc())
            )).all()
            zone = account.time_zone
        rows = "".join(
            "<tr>"
            f"<td>{html.escape(local_time(fax.received_at, zone))}</td>"
            f"<td>{html.escape(fax.caller_number or 'withheld')}</td>"
            f"<td>{html.escape(fax.remote_station_id or '')}</td>"
            f"<td>{fax.pages}</td>"
            f'<td><a href="{PREFIX}/faxes/{html.escape(fax.id)}.pdf">PDF</a></td>'
            "</tr>"
            for fax in faxes
        )
        table = (
            '<table cellpadding="4"><tr><th align="left">Received</th><th align="left">From (caller ID)</th>'
            f'<th align="left">Sending station</th><th>Pages</th><th></th></tr>{rows}</table>'
            if faxes else "<p>No faxes are stored for you.</p>"
        )
        logout = (
            f'<form method="post" action="{PREFIX}/logout"><input type="hidden" name="csrf" '
            f'value="{html.escape(session.csrf)}"><button type="submit">Log out</button></form>'
        )
        return self._page("Your faxes", f"{table}\n{logout}")

    async def download(self, request: web.Request) -> web.StreamResponse:
        _, session = self._session(request)
        if session is None:
            raise web.HTTPSeeOther(f"{PREFIX}/login")
        fax_id = request.match_info["fax_id"]
        async with self.db.reading() as db:
            fax = await db.get(InboundFaxRecord, fax_id[:40])
        # Another account's fax and a fax that does not exist look the same.
        if fax is None or fax.account_id != session.account_id or fax.purged_at is not None or not fax.pdf_path:
            return self._page("Not found", "<p>No such fax is stored for you.</p>", 404)
        name = f"fax-{fax.received_at:%Y%m%d-%H%M%S}-{(fax.caller_number or 'unknown').lstrip('+')}.pdf"
        return web.FileResponse(fax.pdf_path, headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        })

    # --- helpers ---------------------------------------------------------------------------
    async def _check(self, address: str, pin: str) -> int | None:
        """The account id when `pin` is the PIN of the account registered at `address`."""
        async with self.db.reading() as db:
            account = await db.scalar(
                select(Account).join(AccountAddress)
                .where(AccountAddress.kind == "sender", AccountAddress.address == address)
            )
            stored = account.pin_hash if account is not None and account.state != "closed" else None
            account_id = account.id if account is not None else None
        if not stored or not pin:
            # Spend what a real check costs, so the answer's timing says nothing.
            if not _DUMMY_HASH:
                _DUMMY_HASH.append(await asyncio.to_thread(hash_pin, secrets.token_hex(8)))
            await asyncio.to_thread(verify_pin, pin, _DUMMY_HASH[0])
            return None
        return account_id if await asyncio.to_thread(verify_pin, pin, stored) else None

    def _session(self, request: web.Request) -> tuple[str, Session | None]:
        token = request.cookies.get(SESSION_COOKIE, "")
        session = self._sessions.get(token) if token else None
        if session is not None and session.expires <= self.clock():
            self._sessions.pop(token, None)
            session = None
        return token, session

    def _forget_expired(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[token]

    def _same_origin(self, request: web.Request) -> bool:
        """A browser's POST names its page's origin; refuse other sites' forms."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser form post (or an old browser): the CSRF token decides
        public = urlsplit(self.settings.public_url)
        allowed = {f"{public.scheme}://{public.netloc}", f"{request.scheme}://{request.host}"}
        return origin in allowed

    def _login_page(self, message: str = "", *, status: int = 200) -> web.Response:
        csrf = secrets.token_urlsafe(32)
        notice = f'<p role="alert" style="color:#a00">{html.escape(message)}</p>' if message else ""
        body = (
            f"{notice}<p>Log in with the email address of your {html.escape(self.service_name)} account "
            "and your PIN.</p>"
            f'<form method="post" action="{PREFIX}/login">'
            f'<input type="hidden" name="csrf" value="{csrf}">'
            '<p><label>Email address<br><input type="email" name="email" autocomplete="username" required></label></p>'
            '<p><label>PIN<br><input type="password" name="pin" autocomplete="current-password" required></label></p>'
            '<p><button type="submit">Log in</button></p></form>'
        )
        response = self._page("Message center", body, status)
        response.set_cookie(CSRF_COOKIE, csrf, path=PREFIX, httponly=True, secure=self.secure, samesite="Strict",
                            max_age=3600)
        return response

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        return html_page(title, body, status, width="48em")  # wide enough for the fax list




def local_time(moment: datetime, zone: str) -> str:
    """A stored UTC time as the account reads it, in its own time zone."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or zone)

