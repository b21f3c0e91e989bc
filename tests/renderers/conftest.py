"""Shared checks for the renderer tests: every fax we write is decoded by libtiff's
``tiffinfo -D`` and judged by HylaFAX's ``tiffcheck`` (installed by scripts/setup).

A missing tool fails the test rather than skipping it: set-up installs them all.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TIFFCHECK = REPO / ".tools" / "bin" / "tiffcheck"

_TIFFCHECK_CODING = {"g4": "-3", "g3-1d": "-1", "g3-2d": "-2"}
_TIFFCHECK_LENGTH_MM = {"a4": "298", "letter": "280"}  # TOOLING.md: 2292 rows = 297.02 mm


def assert_valid_fax(path: Path, *, pages: int | None = None, compression: str = "g4",
                     resolution: str = "fine", paper: str = "a4") -> list[Image.Image]:
    """Run both validators on ``path`` and return its decoded pages."""
    decoded = subprocess.run(["tiffinfo", "-D", str(path)], capture_output=True, text=True)
    assert decoded.returncode == 0 and "error" not in decoded.stderr.lower(), decoded.stderr
    assert TIFFCHECK.exists(), "run scripts/setup: HylaFAX's tiffcheck is missing"
    checked = subprocess.run(
        [str(TIFFCHECK), _TIFFCHECK_CODING[compression], "-r", "196" if resolution == "fine" else "98",
         "-w", "1728", "-l", _TIFFCHECK_LENGTH_MM[paper], str(path)],
        capture_output=True, text=True)
    assert checked.stdout.strip() == "OK", checked.stdout + checked.stderr
    images = []
    with Image.open(path) as tiff:
        for index in range(tiff.n_frames):
            tiff.seek(index)
            assert tiff.tag_v2[297] == (index, tiff.n_frames)  # PageNumber
            assert tiff.tag_v2[262] == 0                       # min-is-white
            assert tiff.tag_v2[254] == 2                       # a page of a document
            assert len(tiff.tag_v2[273]) == 1                  # one strip per page
            images.append(tiff.copy())
    if pages is not None:
        assert len(images) == pages
    return images


@pytest.fixture
def check_fax():
    return assert_valid_fax


def ocr(page: Image.Image, tmp_dir: Path, *, y_dpi: int | None = None, zoom: float = 1.0) -> str:
    """The words tesseract reads on a fax page (resized to square pixels first)."""
    if y_dpi is None:
        y_dpi = 196 if page.height > 1500 else 98
    square = page.convert("L").resize((round(page.width * zoom), round(page.height * 204 / y_dpi * zoom)))
    image = tmp_dir / "ocr.png"
    square.save(image, dpi=(204, 204))
    result = subprocess.run(["tesseract", str(image), "stdout", "--psm", "3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def ink_box(page: Image.Image, top: int = 0) -> tuple[int, int, int, int] | None:
    """Bounding box of the black pixels of a mode "1" page, below row ``top``."""
    from PIL import ImageChops
    region = page.convert("L").crop((0, top, page.width, page.height))
    box = ImageChops.invert(region).getbbox()
    if box is None:
        return None
    return (box[0], box[1] + top, box[2], box[3] + top)
