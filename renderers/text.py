"""Plain text to PDF: ``text/plain`` bodies and ``.txt`` attachments.

The text is decoded (declared charset, byte-order mark, UTF-8, then a guess by
charset-normalizer), laid out by WeasyPrint in a monospace font with fallbacks
for every script we promise (Latin, Greek, Cyrillic, Arabic, Hebrew, CJK,
Hangul), and handed to renderers.pdf. Long lines wrap, tabs keep 8-column stops,
and a form feed starts a new page, as on a line printer. Runs in a worker process.
"""

from __future__ import annotations

import codecs
import html

import charset_normalizer

from renderers.html import MONO_FONTS, html_to_pdf

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def declared_charset(declared_type: str | None) -> str | None:
    """The charset parameter of a MIME type, if any ("text/plain; charset=koi8-r")."""
    for parameter in (declared_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').strip("'") or None
    return None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes of unknown provenance to text, never failing."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if charset:
        try:
            return data.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: guess below, as mail readers do
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        return str(best)
    return data.decode("cp1252", errors="replace")


def text_to_html(text: str) -> str:
    """Markup that lays ``text`` out like a line printer would, one page per form feed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    pages = []
    for page in text.split("\f"):
        lines = page.split("\n")
        # dir="auto" gives each line its own direction, so Arabic and Hebrew lines
        # read right to left among left-to-right ones.
        rendered = "".join(f'<div dir="auto">{html.escape(line) or "&#160;"}</div>' for line in lines)
        pages.append(f'<section>{rendered}</section>')
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
            + "".join(pages) + "</body></html>")


TEXT_CSS = (
    f"html {{ font-family: {MONO_FONTS}; font-size: 10.5pt; line-height: 1.25; }}"
    "div { white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 8; }"
    "section + section { break-before: page; }"
)


def text_to_pdf(data: bytes, *, paper: str, charset: str | None = None) -> bytes:
    return html_to_pdf(text_to_html(decode_text(data, charset)), paper=paper, extra_css=TEXT_CSS)
