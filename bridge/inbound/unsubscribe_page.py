"""The one-click unsubscribe page (RFC 8058) for promotional mail (R-MAIL-1).

Where it sits: pages the inbound component adds to the one HTTP listener (bridge.web,
config [http]: host, port, public_url), beside the message center
(bridge/inbound/message_center.py). Promotional mail carries
`List-Unsubscribe: <mailto:unsubscribe+TOKEN@...>, <https://.../u/TOKEN>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; a mail client's one-click
unsubscribe is a POST to /u/TOKEN.
  * POST /u/TOKEN opts the token's account out (committed before the answer) and
    answers 200 with a short page, never a redirect (RFC 8058 3.2). Repeating it is
    harmless; an unknown token changes nothing and gets 404.
  * GET /u/TOKEN changes nothing (link scanners and prefetchers follow GET links):
    it shows a page whose button POSTs the same form.
"""

from __future__ import annotations

import html
import logging

from aiohttp import web

from bridge.core.component import WebRoute
from bridge.core.db import Database
from bridge.inbound.accounts import OptOuts, owner_of
from bridge.web.pages import html_page

log = logging.getLogger("bridge.inbound.unsubscribe")


class UnsubscribePage:
    """GET and POST /u/TOKEN (RFC 8058 one-click unsubscribe)."""

    def __init__(self, db: Database, optouts: OptOuts, *, service_name: str) -> None:
        self.db = db
        self.optouts = optouts
        self.service_name = service_name

    def routes(self) -> list[WebRoute]:
        return [WebRoute("GET", "/u/{token}", self.confirm_page), WebRoute("POST", "/u/{token}", self.unsubscribe)]

    async def confirm_page(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        async with self.db.reading() as session:
            known = await owner_of(session, "unsubscribe", token) is not None
        if not known:
            return self._page("Link not valid",
                              "<p>This unsubscribe link is not valid. Use the link in a recent mail from us.</p>", 404)
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
            text += ("<p>Free accounts come with that mail, so your free account is now closed. "
                     "We sent you a note about it.</p>")
        return self._page("You are unsubscribed", text)

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        return html_page(title, body, status)
