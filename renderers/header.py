"""The header line on every page (US 47 CFR 68.318(d)): the last touch before a page is written.

The rule asks for the date and time sent, the sender's name and the sending fax
number at the top of each page, and faxbridge adds "Page n/total". Documents are
rendered into the area below a blank top margin (renderers.raster.PageFrame), so
the line never covers content. The fixed part of the line is laid out once per
fax by WeasyPrint (any script in a sender's name renders) in a worker; the page
number, which changes on every page, is drawn here with Pillow's built-in font.

Pages arrive here already coded. For G4 (the default) only the margin rows are
coded, per page, and spliced in front of the page's code
(renderers.faxtiff.splice_g4_top): the page itself is never decoded or coded again.
"""

from __future__ import annotations

import html

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

from renderers.faxtiff import FAX_WIDTH, X_DPI
from renderers.html import html_to_pdf
from renderers.model import FaxHeader
from renderers.pdf import draw_page
from renderers.raster import PageCanvas, PageFrame

_HEADER_FONT_PT = 8.5


def header_text(header: FaxHeader) -> str:
    sent = header.sent_at.strftime("%Y-%m-%d %H:%M %Z").strip()
    return f"{sent}    From: {header.sender_name}    Fax: {header.sending_number}"


def header_strip(header: FaxHeader, frame: PageFrame) -> Image.Image:
    """The fixed part of the header line as a mode "1" strip, frame.width x frame.top."""
    height_mm = frame.top * 25.4 / frame.y_dpi
    width_mm = FAX_WIDTH * 25.4 / X_DPI
    markup = ("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
              f"<div dir='auto'>{html.escape(header_text(header))}</div></body></html>")
    css = (f"@page {{ size: {width_mm:.2f}mm {height_mm:.2f}mm; margin: 0.6mm 56mm 0 4mm; }}"
           # Wider word gaps: at 8.5 pt and 204 dpi a normal space is 5 px, which
           # both a reader and OCR easily take for letter spacing.
           f"html {{ font-size: {_HEADER_FONT_PT}pt; line-height: 1.1; word-spacing: 0.12em; }}"
           "body { margin: 0; } div { white-space: pre; overflow: hidden; }")
    pdf = pdfium.PdfDocument(html_to_pdf(markup, paper="a4", extra_css=css))
    try:
        page = pdf[0]
        # Drawn straight at the strip's size (non-square fax pixels), no resampling.
        strip = PageFrame(frame.width, frame.top, 0, frame.y_dpi)
        canvas = PageCanvas(strip)
        draw_page(page, canvas, 0, 0, frame.width, frame.top, 0)
    finally:
        pdf.close()
    return canvas.to_bits(None).to_image()


def header_rows(strip: Image.Image | None, number: int, total: int, frame: PageFrame) -> Image.Image:
    """The top margin of page ``number``: the strip and "Page n/total", mode "1".

    Its last row is always white: the page's coded rows below it were coded
    against a white row above them (see renderers.faxtiff.splice_g4_top).
    """
    rows = Image.new("1", (frame.width, frame.top), 1)
    if strip is not None:
        rows.paste(strip, (0, 0))
    # Drawn at square pixels, then squeezed to the page's vertical resolution.
    square_rows = round(frame.top * X_DPI / frame.y_dpi)
    label = Image.new("L", (420, square_rows), 255)
    font = ImageFont.load_default(size=round(_HEADER_FONT_PT / 72 * X_DPI * 1.1))
    draw = ImageDraw.Draw(label)
    text = f"Page {number}/{total}"
    _, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text((label.width - 32 - right, round(0.6 / 25.4 * X_DPI)), text, font=font, fill=0)
    # Squeezed into all rows but the last, so the descenders clear the last row.
    label = label.resize((label.width, frame.top - 1), Image.Resampling.LANCZOS)
    rows.paste(label.point(lambda v: 255 if v >= 160 else 0, mode="1"), (frame.width - label.width, 0))
    rows.paste(1, (0, frame.top - 1, frame.width, frame.top))
    return rows


def stamp(page: Image.Image, strip: Image.Image | None, number: int, total: int,
          frame: PageFrame) -> Image.Image:
    """Draw the header line (strip + "Page n/total") into the page's top margin."""
    page = page.copy()
    page.paste(header_rows(strip, number, total, frame), (0, 0))
    return page
