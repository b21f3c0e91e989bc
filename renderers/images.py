"""Images to fax pages: PNG, JPEG, GIF, BMP, WebP and (multi-page) TIFF.

Runs inside a worker process (renderers.worker). Each image is opened lazily and
its dimensions checked against the pixel limit before any pixel is decoded, so a
decompression bomb is refused for the price of reading its header. A TIFF that is
already a fax in the requested coding is copied strip by strip, never re-encoded.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator

from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from renderers.faxtiff import (
    BitPage,
    Compression,
    EncodedPage,
    Paper,
    Resolution,
    inspect_pages,
    read_encoded_pages_from,
)
from renderers.model import DocumentRefused
from renderers.pdf import too_many_pages_reason
from renderers.raster import PageFrame, fitted_size, grey_to_page, is_landscape

# Assumed resolution of an image that does not say (screenshots, phone photos).
_DEFAULT_DPI = 100.0
# Small images are enlarged at most this much over their natural size.
_MAX_ENLARGEMENT = 2.0


def open_image(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Open (not decode) an image, refusing bombs and unreadable files."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, on images above its own global limit; our
            # limit is checked below and is the one that counts.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise DocumentRefused(label, bomb_reason(max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DocumentRefused(label, "The image file is damaged or in a format that cannot be "
                                     "read. Please send it as PNG, JPEG or PDF.") from None
    if image.width * image.height > max_pixels:
        image.close()
        raise DocumentRefused(label, bomb_reason(max_pixels))
    return image


def bomb_reason(max_pixels: int) -> str:
    return (f"The image is too large to fax (more than {max_pixels // 1_000_000} million pixels). "
            "Please send a smaller image or a PDF.")


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from an image's header, or None if it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def compliant_fax_pages(data: bytes, resolution: Resolution, compression: Compression,
                        paper: Paper) -> list[EncodedPage] | None:
    """The coded pages of a TIFF that is already a fax as requested, else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if not isinstance(image, TiffImagePlugin.TiffImageFile):
                return None
            if not all(info.fits(resolution, compression, paper) for info in inspect_pages(image)):
                return None
        return read_encoded_pages_from(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, KeyError):
        return None


def render_image(data: bytes, label: str, frame: PageFrame, *, max_pages: int,
                 max_pixels: int) -> Iterator[BitPage]:
    """Yield every page of an image file as a bilevel fax page.

    TIFFs give one page per frame; animated GIF and WebP give their first frame.
    """
    image = open_image(data, label, max_pixels)
    try:
        frames = getattr(image, "n_frames", 1) if image.format == "TIFF" else 1
        if frames > max_pages:
            raise DocumentRefused(label, too_many_pages_reason(frames, max_pages))
        for index in range(frames):
            image.seek(index)
            if image.width * image.height > max_pixels:
                raise DocumentRefused(label, bomb_reason(max_pixels))
            yield _image_page(image, label, frame)
    finally:
        image.close()


def _image_page(image: Image.Image, label: str, frame: PageFrame) -> BitPage:
    try:
        bilevel_source = image.mode == "1"
        dpi = _dpi(image)
        upright = ImageOps.exif_transpose(image)  # phones store photos sideways + a tag
        grey = _flatten(upright)
    except (OSError, ValueError, SyntaxError) as error:
        raise DocumentRefused(label, "The image file is damaged and cannot be read "
                                     f"({error}). Please send it again or as PDF.") from None
    width_in, height_in = grey.width / dpi[0], grey.height / dpi[1]
    # A landscape picture too wide for the line is turned upright, so it is
    # shrunk less; small ones stay as they are.
    if is_landscape(grey.width, grey.height) and width_in * 204 > frame.width:
        grey = grey.transpose(Image.Transpose.ROTATE_90)
        width_in, height_in = height_in, width_in
    across, down = fitted_size(width_in, height_in, frame, max_scale=_MAX_ENLARGEMENT)
    return grey_to_page(grey, frame, across, down, photos=not bilevel_source)


def _dpi(image: Image.Image) -> tuple[float, float]:
    dpi = image.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return (_DEFAULT_DPI, _DEFAULT_DPI)
    if not (30 <= x <= 2400 and 30 <= y <= 2400):
        return (_DEFAULT_DPI, _DEFAULT_DPI)
    return (x, y)


def _flatten(image: Image.Image) -> Image.Image:
    """Greyscale on white paper: transparency becomes white, not black."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greys: scale to 8 bits instead of clipping everything to white.
        return image.point(lambda v: v / 256).convert("L")
    return image.convert("L")
