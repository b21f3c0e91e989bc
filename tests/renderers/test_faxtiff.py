"""write_fax_tiff: the TIFF-F container every rendered page ends up in."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from renderers.faxtiff import FaxTiffWriter, read_encoded_pages, write_fax_tiff


def _page(rows: int = 2292, mark: int = 0) -> Image.Image:
    page = Image.new("1", (1728, rows), 1)
    ImageDraw.Draw(page).rectangle((100 + mark * 50, 100, 600, rows // 4), fill=0)
    return page


@pytest.mark.parametrize("compression", ["g4", "g3-1d", "g3-2d"])
@pytest.mark.parametrize("resolution,rows", [("fine", 2292), ("standard", 1146)])
def test_written_fax_passes_tiffinfo_and_tiffcheck(tmp_path, check_fax, compression, resolution, rows):
    out = tmp_path / "fax.tif"
    write_fax_tiff([_page(rows, 0), _page(rows, 1)], out, resolution=resolution, compression=compression)
    pages = check_fax(out, pages=2, compression=compression, resolution=resolution)
    # White stays white and black stays black (no photometric inversion).
    assert pages[0].getpixel((10, 10)) == 255
    assert pages[0].getpixel((300, 200)) == 0


def test_copied_strips_are_byte_identical_to_the_source(tmp_path, check_fax):
    source = tmp_path / "source.tif"
    write_fax_tiff([_page(mark=0), _page(mark=3)], source)
    copy = tmp_path / "copy.tif"
    with FaxTiffWriter(copy) as writer:
        for page in read_encoded_pages(source):
            writer.add_encoded_page(page)
    check_fax(copy, pages=2)
    assert read_encoded_pages(copy) == read_encoded_pages(source)


def test_a_fax_without_pages_is_an_error(tmp_path):
    with pytest.raises(ValueError):
        FaxTiffWriter(tmp_path / "empty.tif").close()
