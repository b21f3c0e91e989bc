"""Images become fax pages: every format, upright, photos dithered in order; bombs refused."""

from __future__ import annotations

import pytest
from PIL import Image

from renderers import DocumentRefused, RenderOptions, SourceDocument, render_fax, write_fax_tiff
from tests.renderers import documents
from tests.renderers.conftest import ink_box


def _render(tmp_path, *docs, **options):
    out = tmp_path / "fax.tif"
    return render_fax(list(docs), out, RenderOptions(**options)), out


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_each_image_format_becomes_one_valid_fax_page(tmp_path, check_fax, fmt):
    data = documents.image_bytes(documents.marked_portrait(), fmt)
    result, out = _render(tmp_path, SourceDocument(f"picture.{fmt.lower()}", data))
    [page] = check_fax(out, pages=1)
    assert result.page_count == 1
    assert ink_box(page) is not None


def test_jpeg_exif_orientation_is_honoured(tmp_path, check_fax):
    # Stored sideways (landscape) with Orientation 6: "rotate 90 clockwise to view".
    stored = documents.marked_portrait().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = documents.image_bytes(stored, "JPEG", exif=exif.tobytes())
    _, out = _render(tmp_path, SourceDocument("phone.jpg", data))
    [page] = check_fax(out, pages=1)
    left, top, _, _ = ink_box(page)
    # The black block is back in the top-left corner: ink there, paper in the
    # other corners (a sideways picture would have it top-right or bottom-left).
    assert page.getpixel((left + 60, top + 60)) == 0
    assert page.getpixel((1728 - 60, top + 60)) == 255
    assert page.getpixel((left + 60, 2292 - top - 60)) == 255


def test_every_page_of_a_multi_page_tiff_is_faxed(tmp_path, check_fax):
    pages = [documents.marked_portrait(), documents.photo(600, 800), documents.marked_portrait()]
    data = documents.image_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    result, out = _render(tmp_path, SourceDocument("scan.tif", data))
    check_fax(out, pages=3)
    assert result.pages_per_document == (("scan.tif", 3),)


def test_a_compliant_fax_tiff_passes_through_untouched(tmp_path, check_fax):
    source = tmp_path / "ready.tif"
    write_fax_tiff([Image.new("1", (1728, 2292), 1), Image.new("1", (1728, 2000), 0)], source)
    result, out = _render(tmp_path, SourceDocument("ready.tif", source.read_bytes()))
    assert out.read_bytes() == source.read_bytes()
    assert result.page_count == 2


def test_photos_get_an_ordered_dither_not_error_diffusion(tmp_path, check_fax):
    data = documents.image_bytes(documents.grey_card(128), "PNG")
    _, out = _render(tmp_path, SourceDocument("grey.png", data))
    [page] = check_fax(out, pages=1)
    left, top, _, _ = ink_box(page)
    patch = page.crop((left + 40, top + 40, left + 40 + 64, top + 40 + 64)).convert("L")
    pixels = list(patch.tobytes())
    black = pixels.count(0) / len(pixels)
    assert 0.35 < black < 0.65  # mid-grey comes out about half black...
    # ...in a pattern that repeats every 8 pixels both ways (a Bayer matrix), which
    # error diffusion never does.
    for y in range(56):
        for x in range(56):
            assert pixels[y * 64 + x] == pixels[(y + 8) * 64 + x] == pixels[y * 64 + x + 8]


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        # A decode would need 10 giga-pixels; the 1 GB memory limit would kill it.
        _render(tmp_path, SourceDocument("bomb.png", documents.png_bomb()), document_timeout_seconds=10)
    assert refused.value.filename == "bomb.png"
    assert "too large" in refused.value.reason


def test_tiny_inline_images_such_as_signature_logos_are_skipped(tmp_path, check_fax):
    logo = documents.image_bytes(Image.new("RGB", (120, 40), "navy"), "PNG")
    photo = documents.image_bytes(documents.photo(), "JPEG")
    result, out = _render(tmp_path, SourceDocument("logo.png", logo, inline=True),
                          SourceDocument("holiday.jpg", photo))
    check_fax(out, pages=1)
    assert result.pages_per_document == (("holiday.jpg", 1),)
    assert [name for name, _ in result.skipped] == ["logo.png"]
