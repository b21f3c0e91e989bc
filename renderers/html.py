"""HTML to PDF with WeasyPrint: HTML bodies and attachments, plain text and the cover.

The PDF it produces goes on to renderers.pdf like any other. Runs inside a worker
process. Nothing is ever fetched from the network (R-PRIV-1: the service is a
passive conduit, and a sender's HTML must not make us call out to trackers or
internal hosts): only ``cid:`` references to the mail's own parts and ``data:``
URLs are resolved; everything else is refused to WeasyPrint, which then leaves
that image or stylesheet out.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from urllib.parse import unquote

from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger("renderers.html")

# Fonts for every script faxbridge promises (installed by scripts/apt/renderers.txt);
# fontconfig falls back along this list glyph by glyph.
SANS_FONTS = ('"DejaVu Sans", "Noto Sans", "Noto Sans Arabic", "Noto Sans Hebrew", '
              '"Noto Sans CJK JP", "Noto Sans CJK KR", sans-serif')
MONO_FONTS = ('"DejaVu Sans Mono", "Noto Sans Mono", "Noto Sans Arabic", "Noto Sans Hebrew", '
              '"Noto Sans Mono CJK JP", "Noto Sans Mono CJK KR", monospace')

_PAGE_SIZES = {"a4": "A4", "letter": "letter"}


class LocalOnlyFetcher(URLFetcher):
    """Resolve ``cid:`` from the mail's own parts and ``data:`` inline; refuse the rest."""

    def __init__(self, parts: Mapping[str, tuple[bytes, str]]) -> None:
        super().__init__(allowed_protocols=("data",), allow_redirects=False)
        # Content-IDs compare case-sensitively by RFC 2392, but mail clients vary in
        # the case they write in the HTML; an exact match wins, then a case-blind one.
        self._parts = dict(parts)
        self._folded = {key.lower(): value for key, value in parts.items()}

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        if url[:4].lower() == "cid:":
            content_id = unquote(url[4:]).strip("<>")
            part = self._parts.get(content_id) or self._folded.get(content_id.lower())
            if part is None:
                raise ValueError(f"no part with Content-ID {content_id!r} in this mail")
            data, mime_type = part
            return URLFetcherResponse(url, data, {"Content-Type": mime_type})
        if url[:5].lower() == "data:":
            return super().fetch(url, headers)  # urllib's data: handler, no network
        log.debug("not fetching %s", url[:200])
        raise ValueError("remote resources are not fetched")


def html_to_pdf(source: bytes | str, *, paper: str, parts: Mapping[str, tuple[bytes, str]] | None = None,
                encoding: str | None = None, extra_css: str = "") -> bytes:
    """Lay out an HTML document on ``paper`` and return it as PDF bytes.

    The page size and fonts are a user stylesheet: a document's own ``@page`` rules
    win, and the PDF renderer fits whatever size it chose to the fax line.
    """
    fetcher = LocalOnlyFetcher(parts or {})
    user_css = CSS(string=(
        f"@page {{ size: {_PAGE_SIZES[paper]}; margin: 14mm 14mm 14mm 14mm; }}"
        f"html {{ font-family: {SANS_FONTS}; font-size: 11pt; }}"
        "img { max-width: 100%; }"
        f"{extra_css}"
    ), url_fetcher=fetcher)
    if isinstance(source, str):
        document = HTML(string=source, url_fetcher=fetcher, base_url="about:blank")
    else:
        document = HTML(file_obj=io.BytesIO(source), encoding=encoding, url_fetcher=fetcher,
                        base_url="about:blank")
    return document.write_pdf(stylesheets=[user_css])
