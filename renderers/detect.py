"""Type detection: the first thing rendering does with each document.

A document's type is decided by its content (magic bytes and container layout),
not by what the mail declared or what the file is called: senders' mail clients
get MIME types wrong all the time, and a hostile sender can lie. The declared type
and the file name only break ties the content cannot (plain text versus HTML with
no markup at the top, the charset of a text, which OLE2 Office format it is).
"""

from __future__ import annotations

import io
import zipfile

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
BMP = "image/bmp"
WEBP = "image/webp"
TIFF = "image/tiff"
TEXT = "text/plain"
HTML = "text/html"
RTF = "application/rtf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
UNKNOWN = "application/octet-stream"

IMAGE_TYPES = frozenset({PNG, JPEG, GIF, BMP, WEBP, TIFF})
OFFICE_TYPES = frozenset({RTF, DOCX, XLSX, PPTX, ODT, ODS, ODP, DOC, XLS, PPT})

# The sentence a sender reads when a file is of none of these types.
ACCEPTED_TYPES_TEXT = (
    "PDF, plain text, HTML, images (PNG, JPEG, GIF, BMP, WebP, TIFF) and office "
    "documents (DOCX, XLSX, PPTX, ODT, ODS, RTF, DOC)"
)

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE2_BY_EXTENSION = {".doc": DOC, ".dot": DOC, ".xls": XLS, ".xlt": XLS, ".ppt": PPT, ".pps": PPT}
_OLE2_BY_DECLARED = {DOC: DOC, XLS: XLS, PPT: PPT}
_ODF_MIMETYPES = {ODT: ODT, ODS: ODS, ODP: ODP}


def detect_type(data: bytes, filename: str = "", declared: str | None = None) -> str:
    """The MIME type of ``data`` as its content shows it.

    Returns one of the constants above; ``UNKNOWN`` for binary content of no type
    faxbridge renders. ``declared`` may carry parameters ("text/plain; charset=...").
    """
    head = data[:64]
    declared_base = (declared or "").split(";", 1)[0].strip().lower()
    if head.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        # The PDF spec lets junk precede the header; readers look in the first KB.
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"BM") and len(data) > 26:
        return BMP
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"{\\rtf"):
        return RTF
    if head.startswith(_OLE2_MAGIC):
        return _ole2_type(filename, declared_base)
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    if _looks_like_text(data):
        return HTML if _looks_like_html(data, filename, declared_base) else TEXT
    return UNKNOWN


def _ole2_type(filename: str, declared: str) -> str:
    # Word, Excel and PowerPoint 97-2003 share the OLE2 container; LibreOffice sorts
    # them out by content itself, so the label here only names the file to people.
    lower = filename.lower()
    for extension, kind in _OLE2_BY_EXTENSION.items():
        if lower.endswith(extension):
            return kind
    return _OLE2_BY_DECLARED.get(declared, DOC)


def _zip_type(data: bytes) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "mimetype" in names:
            mimetype = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
            if mimetype in _ODF_MIMETYPES:
                return mimetype
        if "[Content_Types].xml" in names:
            if any(name.startswith("word/") for name in names):
                return DOCX
            if any(name.startswith("xl/") for name in names):
                return XLSX
            if any(name.startswith("ppt/") for name in names):
                return PPTX
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        pass
    return UNKNOWN


def _looks_like_text(data: bytes) -> bool:
    sample = data[:8192]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if not sample:
        return True
    if b"\x00" in sample:
        return False
    # Control characters other than tab, newlines and form feed mark binary data.
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13, 27))
    return controls <= len(sample) // 100


def _looks_like_html(data: bytes, filename: str, declared: str) -> bool:
    start = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return True
    if start.startswith(b"<") and (b"<html" in start or b"<body" in start or b"<div" in start
                                   or b"<p>" in start or b"<table" in start):
        return True
    # Markup-free text declared or named as HTML is still rendered as HTML: it is
    # harmless either way and the sender's intent is plain.
    return declared == HTML or filename.lower().endswith((".html", ".htm"))
