"""The cover page: the first page of a fax, made from the mail's subject and plain body.

It names the sender, the recipient numbers, the date and the page count of the
whole fax (cover included). Built as HTML and laid out by WeasyPrint so that any
script in a subject or body renders; then it goes through renderers.pdf like any
other document. Runs in a worker process.
"""

from __future__ import annotations

import html

from renderers.html import html_to_pdf
from renderers.model import CoverPage

_COVER_CSS = (
    "h1 { font-size: 40pt; letter-spacing: 6pt; margin: 0 0 8mm 0; border-bottom: 3pt solid black; }"
    "table { border-collapse: collapse; font-size: 13pt; margin-bottom: 8mm; }"
    "th { text-align: left; padding: 1.5mm 8mm 1.5mm 0; vertical-align: top; white-space: nowrap; }"
    "td { padding: 1.5mm 0; }"
    ".body { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12pt; line-height: 1.35;"
    "        border-top: 1pt solid black; padding-top: 5mm; }"
)


def cover_html(cover: CoverPage, total_pages: int) -> str:
    rows = [
        ("To", ", ".join(cover.recipient_numbers)),
        ("From", cover.sender),
        ("Date", cover.date.strftime("%Y-%m-%d %H:%M %Z").strip()),
        ("Pages", f"{total_pages} (including this cover page)"),
        ("Subject", cover.subject),
    ]
    table = "".join(f"<tr><th>{name}</th><td dir='auto'>{html.escape(value)}</td></tr>"
                    for name, value in rows)
    body = html.escape(cover.body_text.strip())
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
            f"<h1>FAX</h1><table>{table}</table>"
            + (f"<div class='body' dir='auto'>{body}</div>" if body else "")
            + "</body></html>")


def cover_to_pdf(cover: CoverPage, total_pages: int, *, paper: str) -> bytes:
    return html_to_pdf(cover_html(cover, total_pages), paper=paper, extra_css=_COVER_CSS)
