"""Type detection trusts the content, not the label the mail put on it."""

from __future__ import annotations

from renderers import detect, detect_type
from tests.renderers import documents


def test_content_wins_over_a_wrong_declared_type_and_name():
    png = documents.image_bytes(documents.marked_portrait(), "PNG")
    assert detect_type(png, "report.pdf", "application/pdf") == detect.PNG


def test_every_image_format_is_recognised_by_its_magic_bytes():
    picture = documents.marked_portrait()
    for fmt, expected in [("PNG", detect.PNG), ("JPEG", detect.JPEG), ("GIF", detect.GIF),
                          ("BMP", detect.BMP), ("WEBP", detect.WEBP), ("TIFF", detect.TIFF)]:
        assert detect_type(documents.image_bytes(picture, fmt), "noname.bin") == expected, fmt


def test_office_packages_are_told_apart_by_their_contents():
    assert detect_type(documents.docx(["hello"]), "x.zip") == detect.DOCX
    assert detect_type(documents.xlsx([["a"]]), "x.zip") == detect.XLSX
    assert detect_type(b"{\\rtf1\\ansi hello}", "") == detect.RTF


def test_html_and_plain_text_are_recognised_without_a_label():
    assert detect_type(b"<!DOCTYPE html><html><body>hi</body></html>") == detect.HTML
    assert detect_type("Grüße aus Köln\n".encode("latin-1")) == detect.TEXT


def test_binary_garbage_is_unknown_even_when_declared_as_pdf():
    assert detect_type(bytes(range(256)) * 8, "invoice.pdf", "application/pdf") == detect.UNKNOWN
