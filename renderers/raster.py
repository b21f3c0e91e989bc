"""Page geometry and the grey-to-bilevel step shared by every document renderer.

A PDF page, an image or a rendered HTML page arrives here as greyscale pixels of
known physical size; it leaves as a 1-bit fax page 1728 px wide (``BitPage``):

* fitting: the page is scaled to fit the content area (the page less the header
  margin) at 204 x 196 (or 98) dpi, keeping its proportions but, as HylaFAX does
  when it renders A4 at 209.1 dpi across, stretched across by up to 3 % so that an
  A4 or Letter page uses the whole 1728-px line; then centred. PDF pages are drawn
  by pdfium straight into their place on a white page canvas (``PageCanvas``), at
  the fax's non-square geometry, so there is no resampling afterwards;
* landscape pages are turned upright (90 degrees counter-clockwise, the way
  printers turn them) before fitting, so they are not shrunk to a third;
* grey to black and white: text and line art are thresholded so strokes stay
  solid. Where there are pictures (a PDF's images, an image file), the paper tone
  is first brought to white (a scan on tinted or yellowed paper is ink on paper,
  not a photo), then only blocks that are mostly mid-tones and little paper are
  photographic and get an ordered (Bayer) dither, which codes several times
  smaller under G4 than error diffusion; scanned text is thresholded.

The pixel work is numpy on whole arrays: a page is 4 million pixels, and every
pass that touches them one at a time in Python or Pillow costs milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from renderers.faxtiff import FAX_WIDTH, X_DPI, Y_DPI, BitPage, page_rows

# Grey levels at or above this are paper; below, ink. Light-coloured text (links,
# grey captions) is darker than this and survives.
TEXT_THRESHOLD = 176
# A block is photographic when more than this share of it is mid-tone...
PHOTO_MIDTONE_SHARE = 0.30
# ...and less than this share is paper: scanned text is mostly paper, with
# mid-tones only along the strokes' edges.
PHOTO_MAX_PAPER_SHARE = 0.50
_MIDTONE = (40, 215)   # grey levels that are neither ink nor paper (on white paper)
_PHOTO_BLOCK = 16      # px: the size of the blocks those shares are measured over
_MAX_STRETCH_ACROSS = 1.03  # HylaFAX's 209.10/204 is 2.5 %
# Paper tone: the grey level below which this share of a picture lies...
_PAPER_QUANTILE = 0.70
# ...is taken for tinted paper (and brought to white) when it is at least this light
# and at least this share of the picture lies within _PAPER_BAND of it.
_MIN_PAPER_LEVEL = 150
_PAPER_PEAK_SHARE = 0.40
_PAPER_BAND = 24
# Levels this far below the paper tone still count as paper (scanner noise, grain).
_PAPER_NOISE = 12
# Photographic areas are dithered with a clustered-dot ordered dither: an 8x8
# threshold matrix whose thresholds grow outwards from two dot centres, so the ink
# forms round dots on a 45-degree screen (36 lines per inch at 204 dpi), as a
# printed halftone does. It reproduces 64 grey levels like a dispersed (Bayer)
# matrix, but with a quarter of the black/white changes per row and rows that
# repeat the row above, which is what G4 codes cheaply: 3-4x fewer bytes.
def _clustered_dot_thresholds() -> np.ndarray:
    centres = (np.arange(8) + 0.5) * np.pi / 4
    # Spot function: 1 at the dot centres (0, 0) and (4, 4), -1 between them.
    spot = np.cos(centres)[:, None] * np.cos(centres)[None, :]
    # Ties broken by the angle around the centre, so dots grow evenly.
    ys, xs = np.mgrid[0:8, 0:8]
    angle = np.arctan2((ys + 0.5) % 4 - 2, (xs + 0.5) % 4 - 2)
    order = np.lexsort((angle.ravel(), -spot.ravel()))
    rank = np.empty(64, dtype=np.int32)
    rank[order] = np.arange(64)
    # Thresholds spread over 2..254 so pure white and pure black stay pure: a pixel
    # is ink when it is at most its cell's threshold.
    return (2 + rank.reshape(8, 8) * 4).astype(np.uint8)


_DITHER_THRESHOLDS = _clustered_dot_thresholds()

Box = tuple[int, int, int, int]   # left, top, right, bottom (right and bottom exclusive)


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

    def placement(self, across: int, down: int) -> tuple[int, int]:
        """Where (left, top) a picture of ``across`` x ``down`` px is centred."""
        left = max(0, (self.width - across) // 2)
        top = self.top + max(0, (self.content_rows - down) // 2)
        return left, top


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


class PageCanvas:
    """A white fax page in grey (one byte per pixel), drawn on, then made bilevel.

    ``pixels`` is a C-contiguous (rows, width) uint8 array: pdfium draws into it
    directly (renderers.pdf), images are pasted into it.
    """

    def __init__(self, frame: PageFrame) -> None:
        self.frame = frame
        self.pixels, self._ink = _page_buffers(frame.rows, frame.width)
        self.pixels.fill(255)

    def paste(self, grey: Image.Image, left: int, top: int) -> None:
        self.pixels[top : top + grey.height, left : left + grey.width] = np.asarray(grey.convert("L"))

    def to_bits(self, picture_boxes: list[Box] | None) -> BitPage:
        """Threshold the page; within ``picture_boxes`` tell photos from ink on paper.

        ``picture_boxes`` are where pictures are (a PDF page's images); None means
        nowhere, which is the fast path of every page of plain text and vector art.
        """
        ink = np.less(self.pixels, TEXT_THRESHOLD, out=self._ink)
        for left, top, right, bottom in picture_boxes or ():
            region = self.pixels[top:bottom, left:right]
            if region.size:
                ink[top:bottom, left:right] = picture_ink(region, (left, top))
        return BitPage(self.frame.width, self.frame.rows, np.packbits(ink, axis=1).tobytes())


_buffers = threading.local()


def _page_buffers(rows: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The grey and ink arrays of a page, allocated once per page size and thread.

    A fresh 4 MB array per page is a fresh mapping whose every memory page faults
    on first touch: reusing them saves ~0.5 ms a page. A thread draws one page at a
    time (each canvas is finished with before the next is made); a new canvas
    takes the arrays over.
    """
    buffers = getattr(_buffers, "arrays", None)
    if buffers is None or buffers[0].shape != (rows, width):
        # Only the current size is kept: all pages of a fax have one size.
        buffers = (np.empty((rows, width), dtype=np.uint8), np.empty((rows, width), dtype=bool))
        _buffers.arrays = buffers
    return buffers


def picture_ink(grey: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Ink (True) or paper for a picture: scanned text thresholded, photos dithered.

    ``origin`` is where the picture sits on the page, so that the dither pattern of
    neighbouring pictures lines up.
    """
    # Bringing tinted paper to white scales every grey level by 255 / white; rather
    # than rewrite 4 million pixels, every threshold is scaled by white / 255.
    white = paper_white(grey)
    photo = photo_blocks(grey, white)
    ink = grey < _scaled(TEXT_THRESHOLD, white)
    if photo is None:
        return ink
    rows, cols = grey.shape
    # Dither only the rows and columns that hold photographic blocks.
    ys, xs = np.nonzero(photo.any(axis=1))[0], np.nonzero(photo.any(axis=0))[0]
    photo = photo[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]
    y0, y1 = ys[0] * _PHOTO_BLOCK, min(rows, (ys[-1] + 1) * _PHOTO_BLOCK)
    x0, x1 = xs[0] * _PHOTO_BLOCK, min(cols, (xs[-1] + 1) * _PHOTO_BLOCK)
    mask = np.repeat(np.repeat(photo, _PHOTO_BLOCK, axis=0), _PHOTO_BLOCK, axis=1)[: y1 - y0, : x1 - x0]
    area = grey[y0:y1, x0:x1]
    thresholds = _dither_thresholds(area.shape, origin[0] + x0, origin[1] + y0, white)
    ink[y0:y1, x0:x1] = np.where(mask, area <= thresholds, ink[y0:y1, x0:x1])
    return ink


def _scaled(level: int, white: int) -> int:
    """The grey level that ``level`` was before the paper was brought to white."""
    return (level * white + 127) // 255


def paper_white(grey: np.ndarray) -> int:
    """The grey level that is paper, to be taken as white: 255 unless tinted.

    The paper is the light level that most of the picture sits at (a page of text
    is mostly paper), less a margin for scanner noise and grain. A picture whose
    typical level is dark or spread out (a photo, a grey card) keeps 255.
    """
    # Every 4th pixel each way is plenty for a histogram, at 1/16 of the cost.
    sample = grey[::4, ::4]
    counts = np.bincount(sample.ravel(), minlength=256)
    total = int(counts.sum())
    paper = int(np.searchsorted(np.cumsum(counts), total * _PAPER_QUANTILE))
    if paper < _MIN_PAPER_LEVEL or paper >= 255 - _PAPER_NOISE:
        return 255
    band = counts[max(0, paper - _PAPER_BAND) : paper + _PAPER_BAND + 1].sum()
    if band < total * _PAPER_PEAK_SHARE:
        return 255
    return paper - _PAPER_NOISE


def photo_blocks(grey: np.ndarray, white: int = 255) -> np.ndarray | None:
    """Which _PHOTO_BLOCK-sized blocks of ``grey`` are photographic; None when none are.

    Renderers draw text and paths without anti-aliasing, so mid-tones come from
    images and smooth shading; a block that is mostly mid-tone and little paper is a
    photo, while scanned text (paper with mid-tones at the stroke edges) is not.
    ``white`` is the paper level (see paper_white).
    """
    rows, cols = grey.shape
    if rows < _PHOTO_BLOCK or cols < _PHOTO_BLOCK:
        return None
    # Shares measured on every other pixel each way: a quarter of the work, and
    # 64 samples per block are plenty to tell the kinds apart.
    sample = grey[::2, ::2]
    step = _PHOTO_BLOCK // 2
    low, high = _scaled(_MIDTONE[0], white), _scaled(_MIDTONE[1], white)
    paper = sample > high
    midtone = (sample >= low) & ~paper
    midtone_share = _block_share(midtone, step)
    paper_share = _block_share(paper, step)
    blocks = (midtone_share > PHOTO_MIDTONE_SHARE) & (paper_share < PHOTO_MAX_PAPER_SHARE)
    if not blocks.any():
        return None
    # Drop clusters narrower than 5 blocks (80 px, 0.4 in): a photo is an area, while
    # a line of bold or faded scanned text only looks like one in a few blocks.
    blocks = _grow(_grow(_shrink(_shrink(blocks))))
    if not blocks.any():
        return None
    # Close small holes (dark or bright patches inside a photo) and grow the edges
    # a little so a photo's border is dithered with it.
    blocks = _shrink(_grow(blocks))
    return _grow(blocks)


def _block_share(flags: np.ndarray, step: int) -> np.ndarray:
    """The share of set flags in each step x step block (partial edge blocks padded)."""
    rows, cols = flags.shape
    block_rows, block_cols = -(-rows // step), -(-cols // step)
    if (rows, cols) != (block_rows * step, block_cols * step):
        padded = np.zeros((block_rows * step, block_cols * step), dtype=bool)
        padded[:rows, :cols] = flags
        flags = padded
    counts = flags.reshape(block_rows, step, block_cols, step).sum(axis=(1, 3), dtype=np.int32)
    return counts / (step * step)


def _grow(blocks: np.ndarray) -> np.ndarray:
    """3x3 maximum: a block becomes set when any neighbour is."""
    padded = np.pad(blocks, 1)
    rows, cols = blocks.shape
    out = np.zeros_like(blocks)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + rows, dx : dx + cols]
    return out


def _shrink(blocks: np.ndarray) -> np.ndarray:
    """3x3 minimum (the page edge counts as set, so edge photos keep their edge)."""
    padded = np.pad(blocks, 1, constant_values=True)
    rows, cols = blocks.shape
    out = np.ones_like(blocks)
    for dy in range(3):
        for dx in range(3):
            out &= padded[dy : dy + rows, dx : dx + cols]
    return out


def _dither_thresholds(shape: tuple[int, int], x: int, y: int, white: int) -> np.ndarray:
    """The dither matrix tiled over ``shape``, in phase with the page, scaled to ``white``."""
    rows, cols = shape
    tile = np.roll(_DITHER_THRESHOLDS, (-(y % 8), -(x % 8)), axis=(0, 1))
    if white != 255:
        tile = ((tile.astype(np.int32) * white + 127) // 255).astype(np.uint8)
    return np.tile(tile, (-(-rows // 8), -(-cols // 8)))[:rows, :cols]


def grey_to_page(grey: Image.Image, frame: PageFrame, across: int, down: int,
                 *, photos: bool = True) -> BitPage:
    """Resize an upright grey picture to (across, down), make it bilevel, place it.

    ``photos=False`` thresholds everything (for pictures that were black and white
    to begin with, such as a fax or a scan in bilevel).
    """
    if grey.mode != "L":
        grey = grey.convert("L")
    if grey.size != (across, down):
        # reducing_gap: a big photo is first shrunk by an integer factor (fast,
        # exact box averaging), and only the last step is resampled.
        grey = grey.resize((across, down), Image.Resampling.LANCZOS, reducing_gap=3.0)
    canvas = PageCanvas(frame)
    left, top = frame.placement(across, down)
    canvas.paste(grey, left, top)
    boxes = [(left, top, left + across, top + down)] if photos else None
    return canvas.to_bits(boxes)
