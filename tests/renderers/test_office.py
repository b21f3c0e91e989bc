"""Office documents go through LibreOffice; without it the sender is told what to send."""

from __future__ import annotations

import pytest

from renderers import DocumentRefused, RenderOptions, SourceDocument, render_fax
from tests.renderers import documents
from tests.renderers.conftest import ocr


def test_docx_and_xlsx_are_converted_and_legible(tmp_path, check_fax):
    words = " ".join(documents.WORDS)
    out = tmp_path / "fax.tif"
    result = render_fax([
        SourceDocument("letter.docx", documents.docx([words, "Second paragraph."])),
        SourceDocument("prices.xlsx", documents.xlsx([["Item", "Price"], ["Paper", "4.20"]])),
    ], out, RenderOptions())
    pages = check_fax(out, pages=2)
    assert result.pages_per_document == (("letter.docx", 1), ("prices.xlsx", 1))
    text = ocr(pages[0], tmp_path).upper()
    assert all(word in text for word in documents.WORDS), text
    assert "PAPER" in ocr(pages[1], tmp_path).upper()


def test_without_libreoffice_the_sender_is_told_which_file_and_which_types(tmp_path):
    with pytest.raises(DocumentRefused) as refused:
        render_fax([SourceDocument("letter.docx", documents.docx(["hello"]))], tmp_path / "fax.tif",
                   RenderOptions(soffice_path="/nonexistent/bin/soffice"))
    assert refused.value.filename == "letter.docx"
    assert "PDF" in refused.value.reason and "PNG" in refused.value.reason
    assert not (tmp_path / "fax.tif").exists()
