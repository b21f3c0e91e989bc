"""The header line on every page (US 47 CFR 68.318(d)): the last touch before a page is written.

The rule asks for the date and time sent, the sender's name and the sending fax
number at the top of each page, and faxbridge adds "Page n/total". Documents are
rendered into the area below a blank top margin (renderers.raster.PageFrame), so
the line never covers content. The fixed part of the line is laid out once per
fax by WeasyPrint (any script in a sender's name renders) in a worker; the page
number, which changes on every page, is drawn here with Pillow's built-in font.
"""

from __future__ import annotations

import html

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageFont

from renderers.faxtiff import FAX_WIDTH, X_DPI
from renderers.html import html_to_pdf
from renderers.model import FaxHeader
from renderers.raster import PageFrame

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
           f"html {{ font-size: {_HEADER_FONT_PT}pt; line-height: 1.1; }}"
           "body { margin: 0; } div { white-space: pre; overflow: hidden; }")
    pdf = pdfium.PdfDocument(html_to_pdf(markup, paper="a4", extra_css=css))
    try:
        page = pdf[0]
        width_pt, _ = page.get_size()
        bitmap = page.render(scale=FAX_WIDTH / width_pt, grayscale=True, no_smoothtext=True)
        grey = bitmap.to_pil().convert("L")
    finally:
        pdf.close()
    grey = grey.resize((frame.width, frame.top), Image.Resampling.LANCZOS)
    return grey.point(lambda v: 255 if v >= 160 else 0, mode="1")


def stamp(page: Image.Image, strip: Image.Image | None, number: int, total: int,
          frame: PageFrame) -> Image.Image:
    """Draw the header line (strip + "Page n/total") into the page's top margin."""
    page = page.copy()
    page.paste(Image.new("1", (frame.width, frame.top), 1), (0, 0))
    if strip is not None:
        page.paste(strip, (0, 0))
    # Drawn at square pixels, then squeezed to the page's vertical resolution.
    square_rows = round(frame.top * X_DPI / frame.y_dpi)
    label = Image.new("L", (420, square_rows), 255)
    font = ImageFont.load_default(size=round(_HEADER_FONT_PT / 72 * X_DPI * 1.1))
    draw = ImageDraw.Draw(label)
    text = f"Page {number}/{total}"
    _, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text((label.width - 32 - right, round(0.6 / 25.4 * X_DPI)), text, font=font, fill=0)
    label = label.resize((label.width, frame.top), Image.Resampling.LANCZOS)
    page.paste(label.point(lambda v: 255 if v >= 160 else 0, mode="1"), (frame.width - label.width, 0))
    return page
