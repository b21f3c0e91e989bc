"""write_fax_tiff: the TIFF-F container every rendered page ends up in."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from renderers.faxtiff import (
    BitPage,
    FaxTiffWriter,
    encode_page,
    read_encoded_pages,
    splice_g3_top,
    splice_g4_top,
    write_fax_tiff,
)


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


def _with_top(page: Image.Image, top: Image.Image) -> Image.Image:
    stamped = page.copy()
    stamped.paste(top, (0, 0))
    return stamped


@pytest.mark.parametrize("compression", ["g4", "g3-1d", "g3-2d"])
def test_a_header_spliced_into_coded_pages_is_what_coding_the_stamped_page_gives(compression):
    margin = 35
    page = _page()  # white above row 100: a blank margin
    top = Image.new("1", (1728, margin), 1)
    ImageDraw.Draw(top).text((20, 8), "2025-03-14 09:26  From: Ada  Page 1/2", fill=0)
    ImageDraw.Draw(top).rectangle((1500, 2, 1700, margin - 2), fill=0)  # ink down to the last row but one
    coded = encode_page(page, compression)
    if compression == "g4":
        spliced = splice_g4_top(coded, margin, encode_page(top, "g4"))
    else:
        blank = encode_page(BitPage(1728, margin + 1, bytes(216 * (margin + 1))), compression)
        top_and_white = Image.new("1", (1728, margin + 1), 1)
        top_and_white.paste(top, (0, 0))
        spliced = splice_g3_top(coded, margin, blank, encode_page(top_and_white, compression))
    # Bit for bit what coding the stamped page gives: the splice is exact, not close.
    assert spliced == encode_page(_with_top(page, top), compression)


@pytest.mark.parametrize("compression", ["g4", "g3-1d", "g3-2d"])
def test_a_page_with_ink_in_its_margin_is_not_spliced(compression):
    margin = 35
    page = _page()
    ImageDraw.Draw(page).line((0, 10, 1727, 10), fill=0)
    top = Image.new("1", (1728, margin), 1)
    coded = encode_page(page, compression)
    with pytest.raises(ValueError):
        if compression == "g4":
            splice_g4_top(coded, margin, encode_page(top, "g4"))
        else:
            blank = encode_page(BitPage(1728, margin + 1, bytes(216 * (margin + 1))), compression)
            splice_g3_top(coded, margin, blank, encode_page(Image.new("1", (1728, margin + 1), 1), compression))
