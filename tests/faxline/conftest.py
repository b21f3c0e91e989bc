"""Fixture fax documents for the fax line tests.

The line sits after rendering (SMTP in -> intake -> transmit queue -> fax line -> result),
so these tests need TIFF-F files of the kind the renderers produce. They are made here,
independently of `renderers/`, so the line can be tested on its own: Pillow draws the
pages and CCITT-encodes each one (its bundled libtiff), and `write_fax_tiff` lays the
strips out as a clean TIFF-F (one strip and one IFD per page, min-is-white, PageNumber,
NewSubfileType 2) because Pillow's own multi-page output gets those tags wrong
(see ../shared/TOOLING.md).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps

FAX_WIDTH = 1728
A4_FINE_ROWS = 2292
A4_STANDARD_ROWS = 1146

# TIFF field types
_SHORT, _LONG, _RATIONAL = 3, 4, 5


def draw_page(number: int, *, rows: int = A4_FINE_ROWS, busy: bool = False) -> Image.Image:
    """A recognisable bilevel page (mode "1", white = 255): a title, ruled lines, and a
    block of text whose content depends on the page number, so pages differ."""
    page = Image.new("L", (FAX_WIDTH, rows), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((100, 100, FAX_WIDTH - 100, 260), outline=0, width=6)
    draw.text((140, 150), f"faxbridge test page {number}", fill=0, font_size=64)
    lines = 60 if busy else 14
    for i in range(lines):
        y = 320 + i * ((rows - 420) // lines)
        draw.text((140, y), f"{number:03d}-{i:03d} " + "The quick brown fox jumps over the lazy dog. " * 2,
                  fill=0, font_size=24)
    draw.line((100, rows - 100, FAX_WIDTH - 100, rows - 100), fill=0, width=3)
    # A shape whose position moves with the page number: a misplaced page shows.
    draw.ellipse((200 + 40 * number, rows // 2, 420 + 40 * number, rows // 2 + 220), outline=0, width=8)
    return page.point(lambda v: 255 if v > 127 else 0, mode="1")


def _ccitt_strip(page: Image.Image, compression: str) -> bytes:
    """Encode one page with Pillow and return the single strip's bytes, coded min-is-white.

    Pillow writes mode "1" as min-is-black; encoding the inverted page gives exactly the
    code words of the page under Photometric 0, without Pillow's slow inversion path."""
    inverted = ImageOps.invert(page.convert("L")).point(lambda v: 255 if v > 127 else 0, mode="1")
    buf = io.BytesIO()
    options = {"group3-2d": {292: 1}, "group3": {292: 0}}.get(compression, {})
    inverted.save(buf, "TIFF", compression="group4" if compression == "group4" else "group3",
                  strip_size=2**30, tiffinfo=options)
    buf.seek(0)
    with Image.open(buf) as encoded:
        offsets, counts = encoded.tag_v2[273], encoded.tag_v2[279]
    assert len(offsets) == 1, "Pillow wrote more than one strip"
    return buf.getvalue()[offsets[0]:offsets[0] + counts[0]]


def write_fax_tiff(pages: Sequence[Image.Image], out_path: Path, *, fine: bool = True,
                   compression: str = "group4") -> Path:
    """Write `pages` (mode "1", 1728 wide) as a TIFF-F file.

    compression: "group4" (T.6), "group3" (T.4 1-D) or "group3-2d" (T.4 2-D)."""
    strips = [_ccitt_strip(page, compression) for page in pages]
    body = bytearray(b"II*\x00\x00\x00\x00\x00")
    ifd_pointer_at = 4
    total = len(pages)
    for number, (page, strip) in enumerate(zip(pages, strips, strict=True)):
        strip_at = len(body)
        body += strip
        if len(body) % 2:
            body += b"\x00"
        rational_at = len(body)
        body += struct.pack("<IIII", 204, 1, 196 if fine else 98, 1)
        tags: list[tuple[int, int, int, bytes]] = [
            (254, _LONG, 1, struct.pack("<I", 2)),
            (256, _LONG, 1, struct.pack("<I", FAX_WIDTH)),
            (257, _LONG, 1, struct.pack("<I", page.height)),
            (258, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (259, _SHORT, 1, struct.pack("<HH", 4 if compression == "group4" else 3, 0)),
            (262, _SHORT, 1, struct.pack("<HH", 0, 0)),
            (266, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (273, _LONG, 1, struct.pack("<I", strip_at)),
            (277, _SHORT, 1, struct.pack("<HH", 1, 0)),
            (278, _LONG, 1, struct.pack("<I", page.height)),
            (279, _LONG, 1, struct.pack("<I", len(strip))),
            (282, _RATIONAL, 1, struct.pack("<I", rational_at)),
            (283, _RATIONAL, 1, struct.pack("<I", rational_at + 8)),
            (284, _SHORT, 1, struct.pack("<HH", 1, 0)),
        ]
        if compression == "group4":
            tags.append((293, _LONG, 1, struct.pack("<I", 0)))
        else:
            tags.append((292, _LONG, 1, struct.pack("<I", 1 if compression == "group3-2d" else 0)))
        tags += [
            (296, _SHORT, 1, struct.pack("<HH", 2, 0)),
            (297, _SHORT, 2, struct.pack("<HH", number, total)),
        ]
        ifd_at = len(body)
        struct.pack_into("<I", body, ifd_pointer_at, ifd_at)
        body += struct.pack("<H", len(tags))
        for tag, kind, count, value in sorted(tags):
            body += struct.pack("<HHI", tag, kind, count) + value
        ifd_pointer_at = len(body)
        body += b"\x00\x00\x00\x00"
    out_path.write_bytes(bytes(body))
    return out_path


def read_pages(path: Path) -> list[Image.Image]:
    """Decode every page of a TIFF into mode "1" images (white = 255)."""
    pages = []
    with Image.open(path) as tiff:
        for index in range(getattr(tiff, "n_frames", 1)):
            tiff.seek(index)
            pages.append(tiff.convert("1").copy())
    return pages


@pytest.fixture(scope="session")
def fax_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small fax documents, made once: G4 fine 1 and 3 pages, G3 2-D and 1-D 2 pages."""
    folder = tmp_path_factory.mktemp("fax_docs")
    pages = [draw_page(n) for n in range(1, 4)]
    return {
        "g4-1": write_fax_tiff(pages[:1], folder / "g4-1.tif"),
        "g4-3": write_fax_tiff(pages, folder / "g4-3.tif"),
        "g3-2d-2": write_fax_tiff(pages[:2], folder / "g3-2d-2.tif", compression="group3-2d"),
        "g3-1d-2": write_fax_tiff(pages[:2], folder / "g3-1d-2.tif", compression="group3"),
        "std-1": write_fax_tiff([draw_page(1, rows=A4_STANDARD_ROWS)], folder / "std-1.tif", fine=False),
    }
