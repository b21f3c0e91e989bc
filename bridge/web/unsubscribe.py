"""The web endpoint: one-click unsubscribe (RFC 8058) for promotional mail (R-MAIL-1)
and the message center (R-STORE-1, bridge/inbound/message_center.py).

Where it sits: a front door beside SMTP, started by the inbound component
(config [http]: host, port, public_url). Promotional mail carries
`List-Unsubscribe: <mailto:unsubscribe+TOKEN@...>, <https://.../u/TOKEN>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; a mail client's one-click
unsubscribe is a POST to /u/TOKEN.
  * POST /u/TOKEN opts the token's account out (committed before the answer) and
    answers 200 with a short page, never a redirect (RFC 8058 3.2). Repeating it is
    harmless; an unknown token changes nothing and gets 404.
  * GET /u/TOKEN changes nothing (link scanners and prefetchers follow GET links):
    it shows a page whose button POSTs the same form.
  * /messages...: the message center, when [http] message_center is on: a customer
    logs in with email address and PIN, lists and downloads their stored faxes.
"""

from __future__ import annotations

import html
import logging

from aiohttp import web

from bridge.core.db import Database
from bridge.inbound.accounts import OptOuts, owner_of
from bridge.inbound.message_center import MessageCenter, html_page
from bridge.web.settings import HttpSettings

log = logging.getLogger("bridge.http")


class UnsubscribeWeb:
    def __init__(self, settings: HttpSettings, db: Database, optouts: OptOuts, *, service_name: str) -> None:
        self.settings = settings
        self.db = db
        self.optouts = optouts
        self.service_name = service_name
        self.message_center = (
            MessageCenter(settings, db, service_name=service_name) if settings.message_center else None
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/u/{token}", self.confirm_page)
        app.router.add_post("/u/{token}", self.unsubscribe)
        if self.message_center is not None:
            self.message_center.add_routes(app)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as error:
            # The fax service must not stop for its unsubscribe page: mail keeps
            # working, and so does the mailto opt-out. Loud, for the operator.
            log.error("web endpoint NOT running: cannot listen on %s:%s (%s); one-click "
                      "unsubscribe links fail until this is fixed", self.settings.host, self.settings.port, error)
            await self._runner.cleanup()
            self._runner = None
            return
        addresses = self._runner.addresses  # port 0 in config: the port the system gave
        self.port = addresses[0][1] if addresses else self.settings.port
        log.info("web endpoint on %s:%s (public %s)", self.settings.host, self.port, self.settings.public_url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def confirm_page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        async with self.db.reading() as session:
            known = await owner_of(session, "unsubscribe", token) is not None
        if not known:
            return self._page("Link not valid", "<p>This unsubscribe link is not valid. Use the link in a recent mail from us.</p>", 404)
        body = (
            f"<p>Stop receiving news and offers from {html.escape(self.service_name)}?</p>"
            f'<form method="post" action="/u/{html.escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return self._page("Unsubscribe", body)

    async def unsubscribe(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        await request.read()  # the body is "List-Unsubscribe=One-Click"; the POST itself is the request
        async with self.db.transaction() as tx:
            result = await self.optouts.unsubscribe(tx, token, via="one-click")
        if result is None:
            return self._page("Link not valid", "<p>This unsubscribe link is not valid. Nothing was changed.</p>", 404)
        text = "<p>You will get no more news and offers from us.</p>"
        if result.closed:
            text += "<p>Free accounts come with that mail, so your free account is now closed. We sent you a note about it.</p>"
        return self._page("You are unsubscribed", text)

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        return html_page(title, body, status)
