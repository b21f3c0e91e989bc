"""The header line of a received junk fax's first page, as text (R-ABUSE-1/2).

Where it sits: called by `bridge.abuse.parsing` (so inside an executor) for a PDF or
TIFF attached to a complaint. A PDF with a text layer gives its first lines through
pypdf; a scan (TIFF, or a PDF without text) goes through tesseract OCR on the top band
of the first page, where US 47 CFR 68.318(d) puts the sender's name and number. OCR
runs as a subprocess with a timeout, so a hostile image cannot hang the poller.
"""

from __future__ import annotations

import io
import logging
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("bridge.abuse.faxtext")

# The header line sits in the top ~5% of a page; take a little more for skewed scans.
_TOP_BAND = 0.08
_PDF_LINES = 6
# OCR reads small print better when it is enlarged first.
_OCR_SCALE = 3
# A header band larger than this is a hostile image, not a fax page.
_MAX_PIXELS = 40_000_000


def first_page_header(data: bytes, content_type: str, filename: str, ocr: bool, ocr_timeout: float) -> str:
    """The text at the top of the first page, or "" when none can be read."""
    is_pdf = content_type == "application/pdf" or filename.lower().endswith(".pdf") or data[:5] == b"%PDF-"
    if is_pdf:
        text = _pdf_text(data)
        if text.strip():
            return text
        return _ocr(_pdf_first_page_image(data), ocr_timeout) if ocr else ""
    return _ocr(_tiff_first_page(data), ocr_timeout) if ocr else ""


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if not reader.pages:
            return ""
        text = reader.pages[0].extract_text() or ""
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as error:
        log.info("fax PDF has no readable text layer: %s", error)
        return ""
    return "\n".join(text.splitlines()[:_PDF_LINES])


def _pdf_first_page_image(data: bytes) -> Image.Image | None:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return None
    try:
        if len(pdf) == 0:
            return None
        page = pdf[0]
        _width, height = page.get_size()
        # Render only the top band, at ~200 dpi.
        crop_bottom = height * (1 - _TOP_BAND)
        bitmap = page.render(scale=200 / 72, crop=(0, crop_bottom, 0, 0), grayscale=True)
        return bitmap.to_pil()
    finally:
        pdf.close()


def _tiff_first_page(data: bytes) -> Image.Image | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            width, height = image.size
            if width * height > _MAX_PIXELS * 10 or width <= 0 or height <= 0:
                return None
            # Fax pages are 204x98 or 204x196 dpi: make the pixels square before OCR.
            band = image.crop((0, 0, width, max(1, int(height * _TOP_BAND)))).convert("L")
            dpi = image.info.get("dpi", (204, 196))
            x_dpi, y_dpi = (float(dpi[0]) or 204.0, float(dpi[1]) or 196.0)
            return band.resize((band.width, max(1, round(band.height * x_dpi / y_dpi))))
    except (UnidentifiedImageError, OSError, ValueError, EOFError, Image.DecompressionBombError) as error:
        log.info("fax image cannot be read: %s", error)
        return None


def _ocr(band: Image.Image | None, timeout: float) -> str:
    if band is None:
        return ""
    from PIL import Image

    if band.width * band.height * _OCR_SCALE**2 > _MAX_PIXELS:
        return ""
    band = band.resize((band.width * _OCR_SCALE, band.height * _OCR_SCALE), Image.Resampling.LANCZOS)
    png = io.BytesIO()
    band.save(png, format="PNG")
    try:
        result = subprocess.run(
            ["tesseract", "stdin", "stdout", "--psm", "6", "-l", "eng"],
            input=png.getvalue(),
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        log.warning("OCR of a fax header took longer than %.0f s; skipped", timeout)
        return ""
    except FileNotFoundError:
        log.warning("tesseract is not installed; fax headers of scans cannot be read")
        return ""
    return result.stdout.decode("utf-8", errors="replace")
