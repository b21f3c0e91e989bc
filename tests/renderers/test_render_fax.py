"""render_fax as the pipeline uses it: options, cover, header line, limits, isolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pypdfium2 as pdfium
import pytest

from renderers import (
    CoverPage,
    DocumentRefused,
    DocumentsRefused,
    FaxHeader,
    RenderOptions,
    SourceDocument,
    fax_tiff_to_pdf,
    render_fax,
)
from tests.renderers import documents
from tests.renderers.conftest import ink_box, ocr

SENT = datetime(2025, 3, 14, 9, 26, tzinfo=UTC)
HEADER = FaxHeader(sent_at=SENT, sender_name="Ada Lovelace", sending_number="+1 202 555 0100")
COVER = CoverPage(sender="ada@example.com", recipient_numbers=("+1 202 555 0199",),
                  subject="Quarterly figures", body_text="Please find the figures attached.", date=SENT)


@pytest.mark.parametrize("resolution,compression,paper,rows", [
    ("standard", "g4", "a4", 1146),
    ("fine", "g3-1d", "a4", 2292),
    ("fine", "g3-2d", "letter", 2156),
    ("standard", "g3-2d", "letter", 1078),
])
def test_resolution_coding_and_paper_are_as_requested(tmp_path, check_fax, resolution, compression, paper, rows):
    out = tmp_path / "fax.tif"
    render_fax([SourceDocument("a.pdf", documents.text_pdf(pages=2))], out,
               RenderOptions(resolution=resolution, compression=compression, paper=paper), header=HEADER)
    pages = check_fax(out, pages=2, resolution=resolution, compression=compression, paper=paper)
    assert {page.size for page in pages} == {(1728, rows)}


def test_every_page_carries_the_header_line_above_the_content(tmp_path, check_fax):
    out = tmp_path / "fax.tif"
    render_fax([SourceDocument("a.pdf", documents.framed_pdf("A4")),
                SourceDocument("b.pdf", documents.framed_pdf("A4"))], out, RenderOptions(), header=HEADER)
    pages = check_fax(out, pages=2)
    for number, page in enumerate(pages, start=1):
        text = ocr(page.crop((0, 0, 1728, 60)), tmp_path, y_dpi=196, zoom=2)
        assert "Ada Lovelace" in text and "555 0100" in text and f"Page {number}/2" in text, text
        # The framed page was scaled into the area below the header: its frame
        # (the page edge) starts below the header margin instead of under it.
        _, top, _, bottom = ink_box(page, top=40)
        assert top >= 40 and bottom <= 2292


@pytest.mark.parametrize("resolution", ["fine", "standard"])
def test_the_header_line_is_the_same_in_every_coding(tmp_path, check_fax, caplog, resolution):
    # The header is spliced into already coded pages (G4 and G3 differently): every
    # coding must decode to the same pixels, header, cover and content.
    decoded = {}
    for compression in ("g4", "g3-1d", "g3-2d"):
        out = tmp_path / f"{compression}.tif"
        render_fax([SourceDocument("a.pdf", documents.text_pdf(pages=2))], out,
                   RenderOptions(compression=compression, resolution=resolution), header=HEADER, cover=COVER)
        pages = check_fax(out, pages=3, compression=compression, resolution=resolution)
        decoded[compression] = [page.tobytes() for page in pages]
    assert decoded["g4"] == decoded["g3-1d"] == decoded["g3-2d"]
    # Every page took the fast path (spliced, not decoded and coded again)...
    assert "slow way" not in caplog.text
    # ...and the header is there: the top margin is not blank.
    assert ink_box(pages[1].crop((0, 0, 1728, 12))) is not None


def test_cover_page_comes_first_and_counts_every_page(tmp_path, check_fax):
    out = tmp_path / "fax.tif"
    result = render_fax([SourceDocument("a.pdf", documents.text_pdf(pages=2))], out, RenderOptions(),
                        cover=COVER, header=HEADER)
    pages = check_fax(out, pages=3)
    assert result.pages_per_document == (("cover page", 1), ("a.pdf", 2))
    text = ocr(pages[0], tmp_path)
    for expected in ("Quarterly figures", "ada@example.com", "+1 202 555 0199", "3 (including this cover page)",
                     "figures attached"):
        assert expected in text, (expected, text)


def test_every_refused_document_is_reported_not_just_the_first(tmp_path):
    with pytest.raises(DocumentsRefused) as refused:
        render_fax([SourceDocument("ok.pdf", documents.text_pdf()),
                    SourceDocument("secret.pdf", documents.encrypted_pdf()),
                    SourceDocument("blob.bin", bytes(range(256)) * 4)], tmp_path / "fax.tif", RenderOptions())
    assert [r.filename for r in refused.value.refusals] == ["secret.pdf", "blob.bin"]
    assert isinstance(refused.value, DocumentRefused) and refused.value.filename == "secret.pdf"
    assert "cannot be faxed" in refused.value.refusals[1].reason
    assert not (tmp_path / "fax.tif").exists()


def test_too_many_pages_across_documents_is_refused(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        render_fax([SourceDocument("a.pdf", documents.text_pdf(pages=2)),
                    SourceDocument("b.pdf", documents.text_pdf(pages=2))], tmp_path / "fax.tif",
                   RenderOptions(max_pages=3))
    assert refused.value.filename == "b.pdf" and "4 pages" in refused.value.reason


def test_too_many_input_bytes_is_refused_before_rendering(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        render_fax([SourceDocument("a.txt", b"x" * 600), SourceDocument("b.txt", b"y" * 600)],
                   tmp_path / "fax.tif", RenderOptions(max_input_bytes=1000))
    assert refused.value.filename == "b.txt" and "MB" in refused.value.reason


def test_a_document_that_takes_too_long_is_stopped_and_refused(tmp_path):
    text = ("All work and no play makes a long fax. " * 60 + "\n") * 2000
    with pytest.raises(DocumentRefused) as refused:
        render_fax([SourceDocument("novel.txt", text.encode())], tmp_path / "fax.tif",
                   RenderOptions(document_timeout_seconds=1.0, max_pages=10_000))
    assert refused.value.filename == "novel.txt" and "longer than 1 seconds" in refused.value.reason


def test_a_document_that_needs_too_much_memory_is_refused_and_the_caller_survives(tmp_path, check_fax):
    big = documents.image_bytes(documents.photo(6000, 6000), "PNG")
    with pytest.raises(DocumentRefused) as refused:
        render_fax([SourceDocument("huge.png", big)], tmp_path / "fax.tif",
                   RenderOptions(document_memory_bytes=300 * 1024 * 1024))
    assert "memory" in refused.value.reason
    # The same process renders the next fax normally.
    render_fax([SourceDocument("a.pdf", documents.text_pdf())], tmp_path / "next.tif", RenderOptions())
    check_fax(tmp_path / "next.tif", pages=1)


def test_the_pdf_preview_has_one_page_per_fax_page_at_paper_size(tmp_path, check_fax):
    out = tmp_path / "fax.tif"
    render_fax([SourceDocument("a.pdf", documents.text_pdf(pages=2))], out, RenderOptions(), header=HEADER)
    preview = pdfium.PdfDocument(fax_tiff_to_pdf(out))
    assert len(preview) == 2
    width, height = preview[0].get_size()
    assert abs(width - 1728 / 204 * 72) < 1 and abs(height - 2292 / 196 * 72) < 1
