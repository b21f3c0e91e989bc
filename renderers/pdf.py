"""PDF to fax pages with pypdfium2: where every paged format ends up.

PDF attachments come here directly; text, HTML, office documents and the cover
page are first turned into PDF by their own modules and then come here too, so
there is one place that decides how a page meets the fax line. Runs inside a
worker process (renderers.worker): pdfium parses hostile input.
"""

from __future__ import annotations

from collections.abc import Iterator

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from renderers.model import DocumentRefused
from renderers.raster import Box, PageFrame, fitted_size, grey_to_page, is_landscape

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


def render_pdf(data: bytes, label: str, frame: PageFrame, max_pages: int) -> Iterator[Image.Image]:
    """Yield each page of the PDF as a mode "1" fax page.

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


def render_page(page: pdfium.PdfPage, frame: PageFrame) -> Image.Image:
    width, height = page.get_size()  # points, with the page's own /Rotate applied
    rotation = 0
    if is_landscape(width, height):
        width, height = height, width
        rotation = 270  # pdfium turns clockwise: 270 is a quarter-turn anticlockwise
    across, down = fitted_size(width / 72, height / 72, frame)
    bitmap = page.render(
        scale=across / width,
        rotation=rotation,
        grayscale=True,
        fill_color=(255, 255, 255, 255),
        # Text and vector art drawn without anti-aliasing: crisp once thresholded, and
        # it leaves mid-tones only where there are images, which are then dithered.
        no_smoothtext=True,
        no_smoothpath=True,
        may_draw_forms=True,
    )
    grey = bitmap.to_pil().convert("L")
    bitmap.close()
    regions = _picture_boxes(page, across / width, rotation, grey.size)
    return grey_to_page(grey, frame, across, down, regions=regions)


def _picture_boxes(page: pdfium.PdfPage, scale: float, extra_rotation: int,
                   size: tuple[int, int]) -> list[Box]:
    """Where on the rendered bitmap the page's images (and forms, shadings) are."""
    kinds = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM, pdfium_c.FPDF_PAGEOBJ_SHADING)
    crop_left, crop_bottom, crop_right, crop_top = page.get_cropbox()
    unrotated_w = (crop_right - crop_left) * scale
    unrotated_h = (crop_top - crop_bottom) * scale
    turn = (page.get_rotation() + extra_rotation) % 360
    boxes = []
    # Top-level objects only: positions inside a form are relative to the form,
    # and the form's own box already covers what it draws.
    for obj in page.get_objects(filter=kinds, max_depth=0):
        try:
            left, bottom, right, top = obj.get_bounds()
        except pdfium.PdfiumError:
            continue
        corners = [((x - crop_left) * scale, (crop_top - y) * scale)
                   for x, y in ((left, bottom), (right, top))]
        # Map unrotated bitmap coordinates through pdfium's clockwise turn.
        turned = [_turn(x, y, unrotated_w, unrotated_h, turn) for x, y in corners]
        xs = [max(0, min(size[0], x)) for x, _ in turned]
        ys = [max(0, min(size[1], y)) for _, y in turned]
        box = (int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    return boxes


def _turn(x: float, y: float, width: float, height: float, turn: int) -> tuple[float, float]:
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
