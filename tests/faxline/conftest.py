"""Fixture fax documents for the fax line tests.

The line sits after rendering (SMTP in -> intake -> transmit queue -> fax line -> result),
so its tests need TIFF-F files like the renderers produce. Pages are drawn here with
Pillow, different on every page so a lost or reordered page shows, and written with
the renderers' own TIFF-F writer (`renderers.faxtiff.write_fax_tiff`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from renderers.faxtiff import FAX_WIDTH, page_rows, write_fax_tiff


def draw_page(number: int, *, rows: int = page_rows("a4", "fine"), dense: bool = False) -> Image.Image:
    """A recognisable bilevel page (mode "1", white = 255). `dense` fills it with text
    like a typical letter; otherwise it is a light page with a dozen lines."""
    page = Image.new("L", (FAX_WIDTH, rows), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((100, 100, FAX_WIDTH - 100, 260), outline=0, width=6)
    draw.text((140, 150), f"faxbridge test page {number}", fill=0, font_size=64)
    lines = 70 if dense else 12
    for i in range(lines):
        y = 320 + i * ((rows - 460) // lines)
        draw.text((140, y), f"{number:03d}-{i:03d} " + "The quick brown fox jumps over the lazy dog. " * 3,
                  fill=0, font_size=22)
    draw.line((100, rows - 100, FAX_WIDTH - 100, rows - 100), fill=0, width=3)
    # A shape whose place depends on the page number.
    draw.ellipse((200 + 40 * number, rows // 2, 420 + 40 * number, rows // 2 + 220), outline=0, width=8)
    return page.point(lambda v: 255 if v > 127 else 0, mode="1")


def read_pages(path: Path) -> list[Image.Image]:
    """Decode every page of a fax TIFF into mode "1" images (white = 255)."""
    pages = []
    with Image.open(path) as tiff:
        for index in range(getattr(tiff, "n_frames", 1)):
            tiff.seek(index)
            pages.append(tiff.convert("1").copy())
    return pages


def same_pages(sent: Path, received: Path) -> bool:
    """True when both files hold the same number of pixel-identical pages."""
    a, b = read_pages(sent), read_pages(received)
    return len(a) == len(b) and all(x.size == y.size and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="session")
def fax_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fax documents made once per session.

    g4-1, g4-3: G4 fine, 1 and 3 light pages; g3-1d-2: G3 1-D, 2 pages;
    dense-1: one dense G4 page (a typical letter), for line-time figures."""
    folder = tmp_path_factory.mktemp("fax_docs")
    pages = [draw_page(n) for n in range(1, 4)]
    docs = {
        "g4-1": (pages[:1], "g4"),
        "g4-3": (pages, "g4"),
        "g3-1d-2": (pages[:2], "g3-1d"),
        "dense-1": ([draw_page(1, dense=True)], "g4"),
    }
    paths = {}
    for name, (doc_pages, compression) in docs.items():
        paths[name] = folder / f"{name}.tif"
        write_fax_tiff(doc_pages, paths[name], compression=compression)
    return paths
