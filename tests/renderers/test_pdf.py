"""PDF pages meet the fax line: fitted, centred, upright, legible; bad PDFs are refused."""

from __future__ import annotations

import pytest

from renderers import DocumentRefused, RenderOptions, SourceDocument, render_fax
from tests.renderers import documents
from tests.renderers.conftest import ink_box, ocr


def _render(tmp_path, *docs, **options):
    out = tmp_path / "fax.tif"
    return render_fax(list(docs), out, RenderOptions(**options)), out


@pytest.mark.parametrize("size", ["A4", "letter", "legal", "150mm 150mm"])
def test_page_sizes_are_fitted_to_the_line_and_centred(tmp_path, check_fax, size):
    result, out = _render(tmp_path, SourceDocument("framed.pdf", documents.framed_pdf(size)))
    [page] = check_fax(out, pages=1)
    assert result.page_count == 1
    left, top, right, bottom = ink_box(page)
    # The frame is the page edge: it spans the line or the height, and is centred.
    assert right - left >= 1728 * 0.95 or bottom - top >= 2292 * 0.97, (size, left, top, right, bottom)
    assert abs(left - (1728 - right)) <= 3
    assert abs(top - (2292 - bottom)) <= 3


def test_landscape_pdf_page_is_turned_upright(tmp_path, check_fax):
    _, out = _render(tmp_path, SourceDocument("wide.pdf", documents.landscape_pdf()))
    [page] = check_fax(out, pages=1)
    left, top, right, bottom = ink_box(page)
    # The bar along the landscape page's long top edge now runs down the page.
    assert bottom - top > 2000 and right - left < 200


def test_every_page_of_a_multi_page_pdf_is_faxed(tmp_path, check_fax):
    result, out = _render(tmp_path, SourceDocument("three.pdf", documents.text_pdf(pages=3)))
    check_fax(out, pages=3)
    assert result.pages_per_document == (("three.pdf", 3),)


def test_rendered_pdf_text_is_legible_to_ocr(tmp_path, check_fax):
    _, out = _render(tmp_path, SourceDocument("words.pdf", documents.text_pdf()))
    [page] = check_fax(out, pages=1)
    text = ocr(page, tmp_path).upper()
    for word in documents.WORDS:
        assert word in text, (word, text)


def test_scanned_text_on_tinted_paper_is_thresholded_not_dithered(tmp_path, check_fax):
    # A grey scan of yellowed paper is ink on paper, not a photo: the paper must come
    # out white and the text solid (dithering it made such pages 10x larger and
    # dotted), and the words must stay readable.
    _, out = _render(tmp_path, SourceDocument("scan.pdf", documents.tinted_scan_pdf()))
    [page] = check_fax(out, pages=1)
    text = ocr(page, tmp_path).upper()
    for word in documents.WORDS:
        assert word in text, (word, text)
    _, top, _, _ = ink_box(page)
    # The 30 mm margin above the text is bare paper: not a single dot in it.
    assert ink_box(page.crop((300, 60, 1400, top - 10))) is None
    assert out.stat().st_size < 40_000


def test_password_protected_pdf_is_refused_with_its_name(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        _render(tmp_path, SourceDocument("secret.pdf", documents.encrypted_pdf()))
    assert refused.value.filename == "secret.pdf"
    assert "password" in refused.value.reason


def test_truncated_pdf_is_refused_as_incomplete(tmp_path):
    data = documents.text_pdf(pages=2)
    with pytest.raises(DocumentRefused) as refused:
        _render(tmp_path, SourceDocument("cut.pdf", data[: len(data) // 2]))
    assert refused.value.filename == "cut.pdf"
    assert "incomplete" in refused.value.reason


def test_damaged_pdf_is_refused_as_damaged(tmp_path):
    data = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    with pytest.raises(DocumentRefused) as refused:
        _render(tmp_path, SourceDocument("broken.pdf", data))
    assert refused.value.filename == "broken.pdf"
    assert "damaged" in refused.value.reason


def test_pdf_with_more_pages_than_a_fax_may_have_is_refused(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        _render(tmp_path, SourceDocument("long.pdf", documents.text_pdf(pages=3)), max_pages=2)
    assert "3 pages" in refused.value.reason and "2 pages" in refused.value.reason
