"""Fax TIFF (TIFF-F) writing and inspection: the last step of rendering.

Every page the renderers produce ends here as one IFD of a TIFF-F file: 1 bit,
Photometric 0 (min-is-white), CCITT G4 or G3 (1-D or 2-D), 204 dpi across,
196 (fine) or 98 (standard) lines per inch, one strip per page, FillOrder 1,
NewSubfileType 2 (a page of a multi-page document) and PageNumber (n, total).
The same files go to the fax line, to ``fax_tiff_to_pdf`` for receipts, and are
checked in the tests by ``tiffinfo -D`` and HylaFAX's ``tiffcheck``.

Pillow's libtiff encoder does the CCITT coding, but its own TIFF writer gets
several fax tags wrong (TOOLING.md): mode "1" comes out min-is-black, asking for
min-is-white makes Pillow invert pixel by pixel, PageNumber is corrupt and a page
is split into several strips. So each page is encoded by Pillow alone, its single
strip lifted out, and the container with exactly the tags above is written here.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

from PIL import Image, TiffImagePlugin

Resolution = Literal["fine", "standard"]
Compression = Literal["g4", "g3-1d", "g3-2d"]
Paper = Literal["a4", "letter"]

FAX_WIDTH = 1728  # pixels on the standard (ISO A4 / 215 mm) fax line
X_DPI = 204
Y_DPI: dict[str, int] = {"fine": 196, "standard": 98}
# Rows of a full page at each vertical resolution (TOOLING.md): A4 297 mm, Letter 11 in.
PAGE_ROWS: dict[tuple[str, str], int] = {
    ("a4", "fine"): 2292,
    ("a4", "standard"): 1146,
    ("letter", "fine"): 2156,
    ("letter", "standard"): 1078,
}

# TIFF tag numbers and field types used below.
_SHORT, _LONG, _RATIONAL = 3, 4, 5
_TAG_NEWSUBFILETYPE = 254
_TAG_WIDTH = 256
_TAG_LENGTH = 257
_TAG_BITS = 258
_TAG_COMPRESSION = 259
_TAG_PHOTOMETRIC = 262
_TAG_FILLORDER = 266
_TAG_STRIPOFFSETS = 273
_TAG_SAMPLES = 277
_TAG_ROWSPERSTRIP = 278
_TAG_STRIPBYTECOUNTS = 279
_TAG_XRES = 282
_TAG_YRES = 283
_TAG_PLANAR = 284
_TAG_T4OPTIONS = 292
_TAG_T6OPTIONS = 293
_TAG_RESUNIT = 296
_TAG_PAGENUMBER = 297
_TAG_CLEANFAXDATA = 327

_COMPRESSION_CODE: dict[str, int] = {"g4": 4, "g3-1d": 3, "g3-2d": 3}
# T4Options bit 0: 2-D coding. Bit 2 (fill bits so each EOL ends on a byte boundary)
# is what fax modems and HylaFAX expect of G3 data; libtiff honours both.
_T4OPTIONS: dict[str, int] = {"g3-1d": 4, "g3-2d": 5}


_INVERT_BYTES = bytes(255 - value for value in range(256))


def page_rows(paper: Paper, resolution: Resolution) -> int:
    """Rows of one full fax page on ``paper`` at ``resolution``."""
    return PAGE_ROWS[(paper, resolution)]


@dataclass(frozen=True)
class EncodedPage:
    """One page already CCITT-coded, ready to be copied into a fax TIFF unchanged."""

    width: int
    rows: int
    data: bytes


def encode_page(page: Image.Image, compression: Compression) -> EncodedPage:
    """CCITT-code one page with Pillow's libtiff and return its single strip.

    Anything but mode "1" is thresholded at mid-grey; the renderers hand over
    pages that are already bilevel, so this only matters for casual callers.
    """
    if page.mode != "1":
        page = page.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
    # Pillow writes mode "1" min-is-black, so a white pixel would be coded as a 1 bit
    # (a "black" run to the CCITT coder). Inverting first makes white the 0 bit that
    # CCITT codes as white; the container then declares Photometric 0 honestly.
    # (ImageChops.invert does not invert mode "1"; flipping the packed bytes does.)
    inverted = Image.frombytes("1", page.size, page.tobytes().translate(_INVERT_BYTES))
    buffer = io.BytesIO()
    params: dict[str, object] = {
        "compression": "group4" if compression == "g4" else "group3",
        # One strip per page: a strip size larger than any page.
        "strip_size": 1 << 30,
    }
    if compression != "g4":
        params["tiffinfo"] = {_TAG_T4OPTIONS: _T4OPTIONS[compression]}
    inverted.save(buffer, format="TIFF", **params)
    buffer.seek(0)
    with Image.open(buffer) as encoded:
        offsets = encoded.tag_v2[_TAG_STRIPOFFSETS]
        counts = encoded.tag_v2[_TAG_STRIPBYTECOUNTS]
    if len(offsets) != 1:
        raise RuntimeError(f"libtiff split a page into {len(offsets)} strips")
    raw = buffer.getvalue()
    return EncodedPage(page.width, page.height, raw[offsets[0] : offsets[0] + counts[0]])


class FaxTiffWriter:
    """Write pages one at a time into a TIFF-F file.

    Pages can be added as images (encoded here) or as ``EncodedPage`` strips taken
    from another compliant fax TIFF (copied without re-encoding). The page total in
    every PageNumber tag is filled in by ``close``, so the writer never has to hold
    more than one page.
    """

    def __init__(self, out_path: Path, *, resolution: Resolution = "fine",
                 compression: Compression = "g4") -> None:
        if resolution not in Y_DPI:
            raise ValueError(f"unknown resolution {resolution!r}")
        if compression not in _COMPRESSION_CODE:
            raise ValueError(f"unknown compression {compression!r}")
        self.path = Path(out_path)
        self.resolution: Resolution = resolution
        self.compression: Compression = compression
        self._file: BinaryIO = open(self.path, "wb")
        self._pages = 0
        self._next_ifd_pointer = 4  # where the offset of the next IFD is to be written
        self._page_number_positions: list[int] = []
        self._file.write(b"II*\x00\x00\x00\x00\x00")

    @property
    def page_count(self) -> int:
        return self._pages

    def add_page(self, page: Image.Image) -> None:
        self.add_encoded_page(encode_page(page, self.compression))

    def add_encoded_page(self, page: EncodedPage) -> None:
        out = self._file
        strip_offset = self._align()
        out.write(page.data)
        ifd_offset = self._align()
        y_dpi = Y_DPI[self.resolution]
        entries: list[tuple[int, int, int, bytes]] = [
            (_TAG_NEWSUBFILETYPE, _LONG, 1, struct.pack("<I", 2)),
            (_TAG_WIDTH, _LONG, 1, struct.pack("<I", page.width)),
            (_TAG_LENGTH, _LONG, 1, struct.pack("<I", page.rows)),
            (_TAG_BITS, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (_TAG_COMPRESSION, _SHORT, 1, struct.pack("<HH", _COMPRESSION_CODE[self.compression], 0)),
            (_TAG_PHOTOMETRIC, _SHORT, 1, struct.pack("<HH", 0, 0)),
            (_TAG_FILLORDER, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (_TAG_STRIPOFFSETS, _LONG, 1, struct.pack("<I", strip_offset)),
            (_TAG_SAMPLES, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (_TAG_ROWSPERSTRIP, _LONG, 1, struct.pack("<I", page.rows)),
            (_TAG_STRIPBYTECOUNTS, _LONG, 1, struct.pack("<I", len(page.data))),
            (_TAG_XRES, _RATIONAL, 1, struct.pack("<II", X_DPI, 1)),
            (_TAG_YRES, _RATIONAL, 1, struct.pack("<II", y_dpi, 1)),
            (_TAG_PLANAR, _SHORT, 1, struct.pack("<HH", 1, 0)),
        ]
        if self.compression == "g4":
            entries.append((_TAG_T6OPTIONS, _LONG, 1, struct.pack("<I", 0)))
        else:
            entries.append((_TAG_T4OPTIONS, _LONG, 1, struct.pack("<I", _T4OPTIONS[self.compression])))
        entries += [
            (_TAG_RESUNIT, _SHORT, 1, struct.pack("<HH", 2, 0)),
            # TIFF 6.0: PageNumber[0] counts from 0; [1] is the total, patched in close().
            (_TAG_PAGENUMBER, _SHORT, 2, struct.pack("<HH", self._pages, 0)),
            (_TAG_CLEANFAXDATA, _SHORT, 1, struct.pack("<HH", 0, 0)),
        ]
        # Values longer than 4 bytes (the two RATIONALs) live after the IFD.
        ifd_size = 2 + 12 * len(entries) + 4
        overflow = ifd_offset + ifd_size
        extra = b""
        body = struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            if len(value) > 4:
                body += struct.pack("<HHII", tag, kind, count, overflow + len(extra))
                extra += value
            else:
                if tag == _TAG_PAGENUMBER:
                    self._page_number_positions.append(ifd_offset + len(body) + 8)
                body += struct.pack("<HHI", tag, kind, count) + value
        next_pointer = ifd_offset + len(body)
        body += struct.pack("<I", 0)
        out.write(body + extra)
        end = out.tell()
        out.seek(self._next_ifd_pointer)
        out.write(struct.pack("<I", ifd_offset))
        out.seek(end)
        self._next_ifd_pointer = next_pointer
        self._pages += 1

    def close(self) -> int:
        """Fill in the page total of every page, close the file, return the page count."""
        if self._file.closed:
            return self._pages
        try:
            if self._pages == 0:
                raise ValueError("a fax needs at least one page")
            for number, position in enumerate(self._page_number_positions):
                self._file.seek(position)
                self._file.write(struct.pack("<HH", number, self._pages))
        finally:
            self._file.close()
        return self._pages

    def _align(self) -> int:
        # TIFF wants IFDs on word boundaries; strips get the same for simplicity.
        position = self._file.tell()
        if position % 2:
            self._file.write(b"\x00")
            position += 1
        return position

    def __enter__(self) -> FaxTiffWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()


def write_fax_tiff(pages: Sequence[Image.Image] | Iterable[Image.Image], out_path: Path, *,
                   resolution: Resolution = "fine", compression: Compression = "g4") -> None:
    """Write ``pages`` (ideally mode "1", 1728 px wide) as one TIFF-F file.

    The images are written as they are: no scaling, no header line. Use this to make
    test faxes; documents go through ``renderers.render_fax``.
    """
    with FaxTiffWriter(out_path, resolution=resolution, compression=compression) as writer:
        for page in pages:
            writer.add_page(page)


@dataclass(frozen=True)
class FaxPageInfo:
    """What one IFD of a TIFF says about itself, read without decoding it."""

    width: int
    rows: int
    compression: int
    t4options: int
    photometric: int
    fill_order: int
    x_dpi: float
    y_dpi: float
    strips: int
    bits_per_sample: int
    samples_per_pixel: int

    def fits(self, resolution: Resolution, compression: Compression, paper: Paper) -> bool:
        """True when this page can go on the fax line exactly as it is coded."""
        wanted_t4 = _T4OPTIONS.get(compression)
        return (
            self.width == FAX_WIDTH
            and 0 < self.rows <= page_rows(paper, resolution)
            and self.compression == _COMPRESSION_CODE[compression]
            and (wanted_t4 is None or (self.t4options & 1) == (wanted_t4 & 1))
            and self.photometric == 0
            and self.fill_order == 1
            and self.strips == 1
            and self.bits_per_sample == 1
            and self.samples_per_pixel == 1
            and round(self.x_dpi) == X_DPI
            and round(self.y_dpi) == Y_DPI[resolution]
        )


def inspect_pages(image: Image.Image) -> list[FaxPageInfo]:
    """Describe every page of an opened (not decoded) TIFF from its tags alone."""
    pages = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        tags = image.tag_v2
        unit = tags.get(296, 2)
        to_inch = 2.54 if unit == 3 else 1.0
        pages.append(FaxPageInfo(
            width=int(tags.get(_TAG_WIDTH, 0)),
            rows=int(tags.get(_TAG_LENGTH, 0)),
            compression=int(tags.get(_TAG_COMPRESSION, 1)),
            t4options=int(tags.get(_TAG_T4OPTIONS, 0)),
            photometric=int(tags.get(_TAG_PHOTOMETRIC, -1)),
            fill_order=int(tags.get(_TAG_FILLORDER, 1)),
            x_dpi=float(tags.get(_TAG_XRES, 0)) * to_inch,
            y_dpi=float(tags.get(_TAG_YRES, 0)) * to_inch,
            strips=len(tags.get(_TAG_STRIPOFFSETS, ())),
            bits_per_sample=_first(tags.get(_TAG_BITS, 1)),
            samples_per_pixel=int(tags.get(_TAG_SAMPLES, 1)),
        ))
    image.seek(0)
    return pages


def read_encoded_pages(path: Path) -> list[EncodedPage]:
    """The coded strips of a one-strip-per-page fax TIFF, for copying unchanged."""
    with open(path, "rb") as source:
        return read_encoded_pages_from(source)


def read_encoded_pages_from(source: BinaryIO) -> list[EncodedPage]:
    """``read_encoded_pages`` for an open binary file (or BytesIO)."""
    with Image.open(source) as image:
        if not isinstance(image, TiffImagePlugin.TiffImageFile):
            raise ValueError("not a TIFF")
        infos = inspect_pages(image)
        strips = []
        for index, info in enumerate(infos):
            image.seek(index)
            offsets = image.tag_v2[_TAG_STRIPOFFSETS]
            counts = image.tag_v2[_TAG_STRIPBYTECOUNTS]
            if len(offsets) != 1:
                raise ValueError(f"page {index + 1} has {len(offsets)} strips")
            strips.append((info, offsets[0], counts[0]))
        pages = []
        for info, offset, count in strips:
            source.seek(offset)
            pages.append(EncodedPage(info.width, info.rows, source.read(count)))
    return pages


def _first(value: object) -> int:
    if isinstance(value, tuple):
        return int(value[0])
    return int(value)  # type: ignore[call-overload]
