"""Fax TIFF (TIFF-F) writing and inspection: the last step of rendering.

Every page the renderers produce ends here as one IFD of a TIFF-F file: 1 bit,
Photometric 0 (min-is-white), CCITT G4 or G3 (1-D or 2-D), 204 dpi across,
196 (fine) or 98 (standard) lines per inch, one strip per page, FillOrder 1,
NewSubfileType 2 (a page of a multi-page document) and PageNumber (n, total).
The same files go to the fax line, to ``fax_tiff_to_pdf`` for receipts, and are
checked in the tests by ``tiffinfo -D`` and HylaFAX's ``tiffcheck``.

libtiff does the CCITT coding; the container with exactly the tags above is
written here. The renderers hand over pages as packed bits with 1 = ink
(``BitPage``), which is what the CCITT coder reads as black, and libtiff is called
through ctypes to code that buffer as one strip: no image object, no per-pixel
pass. Where the system libtiff cannot be loaded, Pillow's bundled libtiff codes the
page instead (slower: Pillow unpacks and repacks the bits). Pillow's own TIFF
writer is never used for the container: it gets several fax tags wrong
(TOOLING.md: min-is-black, corrupt PageNumber, several strips per page).

The header line (renderers.header) is added to already coded G4 pages by
``splice_g4_top``: a page rendered below a blank top margin codes each blank row
as one bit, so the margin's bits can be swapped for the coded header rows without
coding the page again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import struct
import tempfile
import threading
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


def page_rows(paper: Paper, resolution: Resolution) -> int:
    """Rows of one full fax page on ``paper`` at ``resolution``."""
    return PAGE_ROWS[(paper, resolution)]


@dataclass(frozen=True)
class EncodedPage:
    """One page already CCITT-coded, ready to be copied into a fax TIFF unchanged."""

    width: int
    rows: int
    data: bytes


@dataclass(frozen=True)
class BitPage:
    """A bilevel page as packed bits: rows of ``ceil(width / 8)`` bytes, most
    significant bit first, 1 = ink (black), 0 = paper. What the CCITT coder reads."""

    width: int
    rows: int
    ink: bytes

    def to_image(self) -> Image.Image:
        """The page as a Pillow mode "1" image (white = 1), for tests and stamping."""
        return Image.frombytes("1", (self.width, self.rows), self.ink, "raw", "1;I")

    @classmethod
    def from_image(cls, page: Image.Image) -> BitPage:
        if page.mode != "1":
            page = page.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
        # "1;I" packs inverted: Pillow's white (1) becomes the 0 bit CCITT codes as white.
        return cls(page.width, page.height, page.tobytes("raw", "1;I"))


def encode_page(page: Image.Image | BitPage, compression: Compression) -> EncodedPage:
    """CCITT-code one page and return its single strip.

    An image that is not mode "1" is thresholded at mid-grey; the renderers hand
    over ``BitPage``s, so this only matters for casual callers.
    """
    bits = page if isinstance(page, BitPage) else BitPage.from_image(page)
    coder = _libtiff()
    if coder is not None:
        return EncodedPage(bits.width, bits.rows, coder.encode(bits, compression))
    return _encode_with_pillow(bits, compression)


def _encode_with_pillow(bits: BitPage, compression: Compression) -> EncodedPage:
    # Pillow writes mode "1" min-is-black, so its 1 bits (white to Pillow) would be
    # coded as black runs: hand it the ink bits as if they were white, unchanged.
    image = Image.frombytes("1", (bits.width, bits.rows), bits.ink)
    buffer = io.BytesIO()
    params: dict[str, object] = {
        "compression": "group4" if compression == "g4" else "group3",
        # One strip per page: a strip size larger than any page.
        "strip_size": 1 << 30,
    }
    if compression != "g4":
        params["tiffinfo"] = {_TAG_T4OPTIONS: _T4OPTIONS[compression]}
    image.save(buffer, format="TIFF", **params)
    buffer.seek(0)
    with Image.open(buffer) as encoded:
        if not isinstance(encoded, TiffImagePlugin.TiffImageFile):
            raise RuntimeError("Pillow did not read back the TIFF it wrote")
        offsets = encoded.tag_v2[_TAG_STRIPOFFSETS]
        counts = encoded.tag_v2[_TAG_STRIPBYTECOUNTS]
    if len(offsets) != 1:
        raise RuntimeError(f"libtiff split a page into {len(offsets)} strips")
    raw = buffer.getvalue()
    return EncodedPage(bits.width, bits.rows, raw[offsets[0] : offsets[0] + counts[0]])


class _LibTiffCoder:
    """CCITT coding of packed bits by the system libtiff, called through ctypes.

    libtiff only codes into a TIFF file, so each page is written as a one-strip TIFF
    into an in-memory file (memfd) and the strip read back; the container is ours.
    """

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        lib.TIFFFdOpen.restype = ctypes.c_void_p
        lib.TIFFFdOpen.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
        lib.TIFFSetField.restype = ctypes.c_int
        lib.TIFFGetField.restype = ctypes.c_int
        lib.TIFFWriteEncodedStrip.restype = ctypes.c_ssize_t
        lib.TIFFWriteEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_char_p,
                                              ctypes.c_ssize_t]
        lib.TIFFClose.restype = None
        lib.TIFFClose.argtypes = [ctypes.c_void_p]
        self._local = threading.local()

    def _scratch(self) -> int:
        # One scratch file per thread (render_fax may run in several executor threads).
        fd = getattr(self._local, "fd", None)
        if fd is None:
            try:
                fd = os.memfd_create("faxbridge-ccitt", os.MFD_CLOEXEC)
            except (AttributeError, OSError):
                with tempfile.TemporaryFile() as scratch:
                    fd = os.dup(scratch.fileno())
            self._local.fd = fd
        return fd

    def encode(self, bits: BitPage, compression: Compression) -> bytes:
        fd = self._scratch()
        os.ftruncate(fd, 0)
        lib = self._lib
        # TIFFClose closes the descriptor it was given: give it a duplicate.
        tif = lib.TIFFFdOpen(os.dup(fd), b"faxbridge-ccitt", b"w")
        if not tif:
            raise RuntimeError("libtiff could not open its scratch file")
        try:
            uint = ctypes.c_uint32
            # Variadic: each value is passed as C's default promotion of its type.
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_WIDTH), uint(bits.width))
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_LENGTH), uint(bits.rows))
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_BITS), ctypes.c_int(1))
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_SAMPLES), ctypes.c_int(1))
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_PHOTOMETRIC), ctypes.c_int(0))
            lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_ROWSPERSTRIP), uint(bits.rows))
            code = _COMPRESSION_CODE[compression]
            if not lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_COMPRESSION), ctypes.c_int(code)):
                raise RuntimeError("this libtiff has no CCITT coder")
            if compression != "g4":
                lib.TIFFSetField(ctypes.c_void_p(tif), uint(_TAG_T4OPTIONS), uint(_T4OPTIONS[compression]))
            expected = (bits.width + 7) // 8 * bits.rows
            if len(bits.ink) != expected:
                raise ValueError(f"page buffer is {len(bits.ink)} bytes, expected {expected}")
            if lib.TIFFWriteEncodedStrip(ctypes.c_void_p(tif), 0, bits.ink, len(bits.ink)) < 0:
                raise RuntimeError("libtiff failed to code a page")
            offsets = ctypes.POINTER(ctypes.c_uint64)()
            counts = ctypes.POINTER(ctypes.c_uint64)()
            lib.TIFFGetField(ctypes.c_void_p(tif), uint(_TAG_STRIPOFFSETS), ctypes.byref(offsets))
            lib.TIFFGetField(ctypes.c_void_p(tif), uint(_TAG_STRIPBYTECOUNTS), ctypes.byref(counts))
            offset, count = int(offsets[0]), int(counts[0])
        finally:
            lib.TIFFClose(ctypes.c_void_p(tif))
        data = os.pread(fd, count, offset)
        if len(data) != count:
            raise RuntimeError("libtiff's strip could not be read back")
        return data


_CODER_LOCK = threading.Lock()
_CODER: list[_LibTiffCoder | None] = []


def _libtiff() -> _LibTiffCoder | None:
    """The ctypes coder, or None where no libtiff with CCITT support can be loaded."""
    if _CODER:
        return _CODER[0]
    with _CODER_LOCK:
        if not _CODER:
            coder: _LibTiffCoder | None = None
            name = ctypes.util.find_library("tiff") or "libtiff.so.6"
            try:
                coder = _LibTiffCoder(ctypes.CDLL(name))
                coder.encode(BitPage(8, 1, b"\x00"), "g4")  # proves the coder works here
            except (OSError, RuntimeError, AttributeError):
                coder = None
            _CODER.append(coder)
    return _CODER[0]


# --- the header line on coded G4 pages -------------------------------------------------

# EOFB, the end of a G4 page: two EOL codes.
_EOFB = 0b000000000001_000000000001
_EOFB_BITS = 24


def _trailing_eofb(data: bytes) -> tuple[int, int]:
    """A G4 strip as (bits as an integer, number of bits) up to and without its EOFB.

    libtiff pads the EOFB with zero bits to a byte boundary; the EOFB ends with the
    last 1 bit of the strip.
    """
    value = int.from_bytes(data, "big")
    if value == 0:
        raise ValueError("not a G4 strip: no EOFB")
    padding = (value & -value).bit_length() - 1  # zero bits after the last 1
    value >>= padding
    bits = len(data) * 8 - padding
    if bits < _EOFB_BITS or value & ((1 << _EOFB_BITS) - 1) != _EOFB:
        raise ValueError("not a G4 strip: no EOFB at its end")
    return value >> _EOFB_BITS, bits - _EOFB_BITS


def splice_g4_top(page: EncodedPage, blank_rows: int, top: EncodedPage) -> EncodedPage:
    """Replace the first ``blank_rows`` rows of a coded G4 page by the rows of ``top``.

    ``page`` must start with ``blank_rows`` white rows; ``top`` must be
    ``blank_rows`` rows whose last row is white. In G4 each row is coded against the
    row above, and a white row below a white row (or the top edge) is one bit, "1"
    (vertical mode, offset 0). So the page's first ``blank_rows`` bits are its
    margin, and because the rows after the margin see a white row above them in
    both, their code stays valid after the swap. Raises ValueError when the page
    does not start that way (the caller then codes the page again).
    """
    if top.rows != blank_rows or top.width != page.width:
        raise ValueError("the top rows do not match the page")
    value, bits = _trailing_eofb(page.data)
    if bits < blank_rows or value >> (bits - blank_rows) != (1 << blank_rows) - 1:
        raise ValueError("the page does not start with blank rows")
    rest_bits = bits - blank_rows
    rest = value & ((1 << rest_bits) - 1)
    head, head_bits = _trailing_eofb(top.data)
    total_bits = head_bits + rest_bits + _EOFB_BITS
    padding = -total_bits % 8
    joined = ((((head << rest_bits) | rest) << _EOFB_BITS) | _EOFB) << padding
    return EncodedPage(page.width, page.rows, joined.to_bytes((total_bits + padding) // 8, "big"))


def _g3_row_offset(data: bytes, row: int) -> int:
    """The byte offset at which row ``row`` of a G3 strip begins (after its EOL).

    With T4Options bit 2 (fill bits) every EOL (eleven 0 bits, then a 1) ends on a
    byte boundary: a byte 0x01 after a byte whose low four bits are 0. Valid codes
    never hold eleven 0 bits in a row, so nothing else matches.
    """
    position, seen = 0, -1
    while seen < row:
        found = data.find(b"\x01", position)
        if found < 0:
            raise ValueError("not a G3 strip with fill bits: too few EOLs")
        position = found + 1
        if found == 0 or data[found - 1] & 0x0F:
            continue
        seen += 1
    return position


def splice_g3_top(page: EncodedPage, blank_rows: int, blank: EncodedPage, top: EncodedPage) -> EncodedPage:
    """``splice_g4_top`` for G3 (1-D or 2-D, with fill bits): whole bytes.

    ``blank`` and ``top`` are coded in the page's coding and are ``blank_rows + 1``
    rows: a white picture, and the top rows followed by a white row. Each row's
    code starts on a byte boundary after its EOL and depends only on that row and
    (2-D) the white row above it, so the page keeps its code from row
    ``blank_rows`` on, after the header's code up to there. The page's first rows
    are checked to be coded exactly as white rows are.
    """
    cut = _g3_row_offset(blank.data, blank_rows)
    if page.width != top.width or page.data[:cut] != blank.data[:cut]:
        raise ValueError("the page does not start with blank rows")
    head = _g3_row_offset(top.data, blank_rows)
    return EncodedPage(page.width, page.rows, top.data[:head] + page.data[cut:])


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
        # The writer is itself the context manager: close() and __exit__ close the file.
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - held across add_page calls
        self._pages = 0
        self._next_ifd_pointer = 4  # where the offset of the next IFD is to be written
        self._page_number_positions: list[int] = []
        # Where each page's strip went: (width, rows, offset, length), so that our
        # own intermediate files can be read back without parsing them.
        self.strips: list[tuple[int, int, int, int]] = []
        self._file.write(b"II*\x00\x00\x00\x00\x00")

    @property
    def page_count(self) -> int:
        return self._pages

    def add_page(self, page: Image.Image | BitPage) -> None:
        self.add_encoded_page(encode_page(page, self.compression))

    def add_encoded_page(self, page: EncodedPage) -> None:
        out = self._file
        strip_offset = self._align()
        out.write(page.data)
        self.strips.append((page.width, page.rows, strip_offset, len(page.data)))
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


def write_fax_tiff(pages: Sequence[Image.Image] | Iterable[Image.Image | BitPage], out_path: Path, *,
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


def inspect_pages(image: TiffImagePlugin.TiffImageFile) -> list[FaxPageInfo]:
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


def read_strips(path: Path, strips: Sequence[tuple[int, int, int, int]]) -> list[EncodedPage]:
    """The pages of a fax TIFF this process family wrote, from ``FaxTiffWriter.strips``."""
    pages = []
    with open(path, "rb") as source:
        for width, rows, offset, length in strips:
            source.seek(offset)
            data = source.read(length)
            if len(data) != length:
                raise ValueError(f"{path} is shorter than its strips")
            pages.append(EncodedPage(width, rows, data))
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
