"""Page geometry and the grey-to-bilevel step shared by every document renderer.

A PDF page, an image or a rendered HTML page arrives here as a greyscale picture
of known physical size; it leaves as a 1-bit fax page 1728 px wide:

* fitting: the page is scaled to fit the content area (the page less the header
  margin) at 204 x 196 (or 98) dpi, keeping its proportions but, as HylaFAX does
  when it renders A4 at 209.1 dpi across, stretched across by up to 3 % so that an
  A4 or Letter page uses the whole 1728-px line; then centred;
* landscape pages are turned upright (90 degrees counter-clockwise, the way
  printers turn them) before fitting, so they are not shrunk to a third;
* grey to black and white: text and line art are thresholded so strokes stay
  solid, and areas with many mid-tones (photos, scans in colour) get an ordered
  (Bayer) dither, which codes several times smaller under G4 than error diffusion.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter

from renderers.faxtiff import FAX_WIDTH, X_DPI, Y_DPI, page_rows

# Grey levels at or above this are paper; below, ink. Light-coloured text (links,
# grey captions) is darker than this and survives.
TEXT_THRESHOLD = 176
# A block whose share of mid-tone pixels exceeds this is photographic.
PHOTO_MIDTONE_SHARE = 0.30
_PHOTO_BLOCK = 16  # px: the size of the blocks that share is measured over
_MAX_STRETCH_ACROSS = 1.03  # HylaFAX's 209.10/204 is 2.5 %
# 8x8 Bayer matrix: the classic recursive ordered-dither index pattern.
_BAYER_8 = (
    (0, 32, 8, 40, 2, 34, 10, 42),
    (48, 16, 56, 24, 50, 18, 58, 26),
    (12, 44, 4, 36, 14, 46, 6, 38),
    (60, 28, 52, 20, 62, 30, 54, 22),
    (3, 35, 11, 43, 1, 33, 9, 41),
    (51, 19, 59, 27, 49, 17, 57, 25),
    (15, 47, 7, 39, 13, 45, 5, 37),
    (63, 31, 55, 23, 61, 29, 53, 21),
)


@dataclass(frozen=True)
class PageFrame:
    """The fax page every document is drawn onto."""

    width: int            # pixels across (1728)
    rows: int             # pixels down the whole page
    top: int              # rows kept white at the top for the header line
    y_dpi: int

    @classmethod
    def for_fax(cls, paper: str, resolution: str, header: bool) -> PageFrame:
        y_dpi = Y_DPI[resolution]
        # ~4.5 mm: room for a 2.5 mm header line and a gap above the content.
        top = round(y_dpi * 4.5 / 25.4) if header else 0
        return cls(FAX_WIDTH, page_rows(paper, resolution), top, y_dpi)  # type: ignore[arg-type]

    @property
    def content_rows(self) -> int:
        return self.rows - self.top


def is_landscape(width: float, height: float) -> bool:
    return width > height * 1.02


def fitted_size(width_in: float, height_in: float, frame: PageFrame,
                max_scale: float | None = None) -> tuple[int, int]:
    """Pixels (across, down) that a page of ``width_in`` x ``height_in`` inches takes.

    ``max_scale`` caps enlargement (1.0 = natural size), for small images.
    """
    natural_w = width_in * X_DPI
    natural_h = height_in * frame.y_dpi
    scale = min(frame.width / natural_w, frame.content_rows / natural_h)
    if max_scale is not None:
        scale = min(scale, max_scale)
    across = min(frame.width, natural_w * scale * _MAX_STRETCH_ACROSS)
    down = natural_h * scale
    return max(1, round(across)), max(1, min(frame.content_rows, round(down)))


def to_bilevel(grey: Image.Image, mask: Image.Image | None = None) -> Image.Image:
    """Mode "L" to mode "1": threshold text and line art, ordered-dither photos.

    ``mask`` ("L", 255 = photographic) is computed from ``grey`` when not given.
    """
    if grey.mode != "L":
        grey = grey.convert("L")
    text = grey.point(lambda v: 255 if v >= TEXT_THRESHOLD else 0, mode="1")
    if mask is None:
        mask = photo_mask(grey)
    if mask is None:
        return text
    return Image.composite(ordered_dither(grey), text, mask)


Box = tuple[int, int, int, int]


def photo_mask(grey: Image.Image, regions: list[Box] | None = None) -> Image.Image | None:
    """An "L" mask, 255 where the picture is photographic; None when nowhere is.

    ``regions`` (left, top, right, bottom boxes) limits where photos can be: a PDF
    page passes the boxes of its images, so coloured text and shaded vector art are
    thresholded, not dithered. None means anywhere (a picture file).
    """
    if regions is not None and not regions:
        return None
    # Renderers draw text and paths without anti-aliasing, so mid-tones come from
    # images and smooth shading; their local share tells a photo from a scan of text.
    midtones = grey.point(lambda v: 255 if 40 <= v <= 215 else 0)
    small = (max(1, grey.width // _PHOTO_BLOCK), max(1, grey.height // _PHOTO_BLOCK))
    share = midtones.resize(small, Image.Resampling.BOX)
    cut = round(255 * PHOTO_MIDTONE_SHARE)
    blocks = share.point(lambda v: 255 if v > cut else 0)
    if blocks.getbbox() is None:
        return None
    # Close small holes (dark or bright patches inside a photo) and grow the edges
    # a little so a photo's border is dithered with it.
    blocks = blocks.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))
    blocks = blocks.filter(ImageFilter.MaxFilter(3))
    mask = blocks.resize(grey.size, Image.Resampling.NEAREST)
    if regions is not None:
        allowed = Image.new("L", grey.size, 0)
        draw = ImageDraw.Draw(allowed)
        for box in regions:
            draw.rectangle(box, fill=255)
        mask = ImageChops.darker(mask, allowed)
        if mask.getbbox() is None:
            return None
    return mask


def ordered_dither(grey: Image.Image) -> Image.Image:
    """Mode "L" to mode "1" by comparing each pixel with a tiled 8x8 Bayer matrix."""
    width, height = grey.size
    rows = []
    repeats = width // 8 + 1
    for matrix_row in _BAYER_8:
        # Thresholds spread over 2..254 so pure white and pure black stay pure.
        line = bytes(2 + value * 4 for value in matrix_row) * repeats
        rows.append(line[:width])
    tile = b"".join(rows)
    data = (tile * (height // 8 + 1))[: width * height]
    thresholds = Image.frombytes("L", (width, height), data)
    # grey - threshold > 0 means lighter than the threshold: paper.
    difference = ImageChops.subtract(grey, thresholds)
    return difference.point(lambda v: 255 if v > 0 else 0, mode="1")


def place(content: Image.Image, frame: PageFrame) -> Image.Image:
    """Centre a bilevel picture in the content area of a white fax page."""
    page = Image.new("1", (frame.width, frame.rows), 1)
    left = max(0, (frame.width - content.width) // 2)
    top = frame.top + max(0, (frame.content_rows - content.height) // 2)
    page.paste(content, (left, top))
    return page


def grey_to_page(grey: Image.Image, frame: PageFrame, across: int, down: int,
                 *, photos: bool = True, regions: list[Box] | None = None) -> Image.Image:
    """Resize an upright grey picture to (across, down), make it bilevel, place it.

    ``photos=False`` thresholds everything (for pictures that were black and white
    to begin with, such as a fax or a scan in bilevel); ``regions`` see photo_mask.
    """
    # Photos are found before resizing: resampling greys the edges of crisp text,
    # which would then look like a photo to photo_mask.
    mask = photo_mask(grey, regions) if photos else None
    if grey.size != (across, down):
        grey = grey.resize((across, down), Image.Resampling.LANCZOS)
        if mask is not None:
            mask = mask.resize((across, down), Image.Resampling.NEAREST)
    if mask is None:
        bilevel = grey.point(lambda v: 255 if v >= TEXT_THRESHOLD else 0, mode="1")
    else:
        bilevel = to_bilevel(grey, mask)
    return place(bilevel, frame)
