"""PDF to fax pages with pypdfium2: where every paged format ends up.

PDF attachments come here directly; text, HTML, office documents and the cover
page are first turned into PDF by their own modules and then come here too, so
there is one place that decides how a page meets the fax line. Runs inside a
worker process (renderers.worker): pdfium parses hostile input.

Each page is drawn by pdfium straight into its place on the fax page canvas
(renderers.raster.PageCanvas), scaled separately across and down to the fax's
204 x 196 (or 98) dpi and turned upright if it is landscape, so no pixel is
resampled afterwards. Only the areas where the page has images are looked at for
photos; a page of text and vector art is simply thresholded.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from renderers.faxtiff import BitPage
from renderers.model import DocumentRefused
from renderers.raster import Box, PageCanvas, PageFrame, fitted_size, is_landscape

# pdfium's FPDF_GetLastError codes (fpdfview.h).
_ERR_FORMAT = 3
_ERR_PASSWORD = 4
_ERR_SECURITY = 6


def open_pdf(data: bytes, label: str) -> pdfium.PdfDocument:
    """Open a PDF or refuse it with a reason the sender can act on."""
    # pdfium quietly rebuilds a file that was cut off in transit and renders what is
    # left; a fax missing its last pages is worse than a clear refusal.
    if b"%%EOF" not in data[-4096:]:
        raise DocumentRefused(label, "The PDF file is incomplete (it seems to have been cut off). "
                                     "Please attach the complete file again.")
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        code = getattr(error, "err_code", None)
        if code == _ERR_PASSWORD:
            raise DocumentRefused(label, "The PDF is protected by a password, so it cannot be "
                                         "opened. Please send a copy without the password.") from None
        if code == _ERR_SECURITY:
            raise DocumentRefused(label, "The PDF uses a protection scheme that cannot be opened. "
                                         "Please send an unprotected copy.") from None
        raise DocumentRefused(label, "The PDF file is damaged and cannot be read. "
                                     "Please export or save it as PDF again and resend it.") from None
    if len(document) == 0:
        document.close()
        raise DocumentRefused(label, "The PDF file has no pages.")
    return document


def pdf_page_count(data: bytes, label: str) -> int:
    document = open_pdf(data, label)
    try:
        return len(document)
    finally:
        document.close()


def render_pdf(data: bytes, label: str, frame: PageFrame, max_pages: int) -> Iterator[BitPage]:
    """Yield each page of the PDF as a bilevel fax page.

    Refuses a PDF of more than ``max_pages`` pages before rendering any of them.
    """
    document = open_pdf(data, label)
    try:
        if len(document) > max_pages:
            raise DocumentRefused(label, too_many_pages_reason(len(document), max_pages))
        document.init_forms()  # so filled-in form fields are drawn too
        for index in range(len(document)):
            page = document[index]
            try:
                yield render_page(page, frame)
            finally:
                page.close()
    finally:
        document.close()


# Text and vector art drawn without anti-aliasing: crisp once thresholded, and it
# leaves mid-tones only where there are images. Images are sampled, not smoothed,
# when scaled (as Ghostscript does for a fax): smoothing a 300-dpi scan down to
# 204 dpi costs about a third of the page's time and greys the stroke edges.
# No FPDF_GRAYSCALE: the bitmap is already grey, and the flag only made pdfium
# convert images a slower way (30 % of a scan page's time, identical pixels on
# the whole bench corpus).
_RENDER_FLAGS = (pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_RENDER_NO_SMOOTHTEXT
                 | pdfium_c.FPDF_RENDER_NO_SMOOTHPATH | pdfium_c.FPDF_RENDER_NO_SMOOTHIMAGE)
_PICTURE_KINDS = frozenset((pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM,
                            pdfium_c.FPDF_PAGEOBJ_SHADING))
_ROTATE_QUARTER_ANTICLOCKWISE = 3  # pdfium turns clockwise in quarters: 3 = 270 degrees


def render_page(page: pdfium.PdfPage, frame: PageFrame) -> BitPage:
    width, height = page.get_size()  # points, with the page's own /Rotate applied
    turned = is_landscape(width, height)
    if turned:
        width, height = height, width
    across, down = fitted_size(width / 72, height / 72, frame)
    left, top = frame.placement(across, down)
    canvas = PageCanvas(frame)
    draw_page(page, canvas, left, top, across, down, _ROTATE_QUARTER_ANTICLOCKWISE if turned else 0)
    boxes = _picture_boxes(page, across / width, down / height, turned, (left, top, across, down))
    return canvas.to_bits(boxes or None)


def draw_page(page: pdfium.PdfPage, canvas: PageCanvas, left: int, top: int, across: int, down: int,
          rotate: int) -> None:
    """Let pdfium draw the page scaled to across x down at (left, top) of the canvas."""
    pixels = canvas.pixels
    stride = pixels.strides[0]
    # A pdfium bitmap over the content area of the canvas: pdfium writes the
    # canvas's own memory, so there is nothing to copy or place afterwards.
    first = ctypes.c_void_p(pixels.ctypes.data + top * stride + left)
    bitmap = pdfium_c.FPDFBitmap_CreateEx(across, down, pdfium_c.FPDFBitmap_Gray, first, stride)
    if not bitmap:
        raise MemoryError("pdfium could not set up a page bitmap")
    try:
        # size_x and size_y scale the page separately across and down: the fax's
        # non-square pixels in one pass.
        pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, across, down, rotate, _RENDER_FLAGS)
        if page.formenv:
            pdfium_c.FPDF_FFLDraw(page.formenv, bitmap, page, 0, 0, across, down, rotate, _RENDER_FLAGS)
    finally:
        pdfium_c.FPDFBitmap_Destroy(bitmap)


def _picture_boxes(page: pdfium.PdfPage, scale_x: float, scale_y: float, turned: bool,
                   placement: tuple[int, int, int, int]) -> list[Box]:
    """Where on the canvas the page's images (and forms, shadings) are."""
    left, top, across, down = placement
    crop_left, crop_bottom, crop_right, crop_top = page.get_cropbox()
    rotation = page.get_rotation() % 360
    # Page space (points, bottom-up, before /Rotate) to display space (points, top-down,
    # after /Rotate, as get_size reports), then the landscape turn and the scaling.
    shown_w = crop_right - crop_left if rotation in (0, 180) else crop_top - crop_bottom
    boxes = []
    bounds = [ctypes.c_float() for _ in range(4)]
    # Top-level objects only: positions inside a form are relative to the form,
    # and the form's own box already covers what it draws. Raw calls: a page of
    # text has thousands of objects, and wrapping each in a Python object cost
    # more than drawing the page.
    for index in range(pdfium_c.FPDFPage_CountObjects(page)):
        obj = pdfium_c.FPDFPage_GetObject(page, index)
        if pdfium_c.FPDFPageObj_GetType(obj) not in _PICTURE_KINDS:
            continue
        if not pdfium_c.FPDFPageObj_GetBounds(obj, *(ctypes.byref(b) for b in bounds)):
            continue
        x0, y0, x1, y1 = (b.value for b in bounds)
        xs, ys = [], []
        for x, y in ((x0, y0), (x1, y1)):
            dx, dy = _turn(x - crop_left, crop_top - y, crop_right - crop_left, crop_top - crop_bottom, rotation)
            if turned:  # a quarter-turn anticlockwise: the top edge becomes the left
                dx, dy = dy, shown_w - dx
            xs.append(left + dx * scale_x)
            ys.append(top + dy * scale_y)
        box = (max(left, int(min(xs))), max(top, int(min(ys))),
               min(left + across, int(max(xs)) + 1), min(top + down, int(max(ys)) + 1))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


def _turn(x: float, y: float, width: float, height: float, turn: int) -> tuple[float, float]:
    """Unrotated top-down coordinates to the page shown turned clockwise by ``turn``."""
    if turn == 90:
        return height - y, x
    if turn == 180:
        return width - x, height - y
    if turn == 270:
        return y, width - x
    return x, y


def too_many_pages_reason(pages: int, max_pages: int) -> str:
    return (f"It has {pages} pages, more than the {max_pages} pages one fax may have. "
            "Please split it into several faxes.")
