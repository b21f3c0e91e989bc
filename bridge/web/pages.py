"""The shape of every page the service serves: one small HTML page, safe headers.

Where it sits: used by the pages components add to the HTTP listener (the inbound
flow's one-click unsubscribe page and message center). Pages carry no scripts, are never
cached and cannot be framed.
"""

from __future__ import annotations

import html

from aiohttp import web

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def html_page(title: str, body: str, status: int = 200, *, width: str = "36em") -> web.Response:
    """A small page of the service's web endpoint (message center, one-click
    unsubscribe): `body` is HTML already escaped by the caller; no caching, no framing."""
    text = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width">\n'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body style="font-family:sans-serif;max-width:{width};margin:3em auto">\n'
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=PAGE_HEADERS)
