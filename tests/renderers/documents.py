"""Fixture documents for the renderer tests, built here so nothing is downloaded.

PDFs come from WeasyPrint (any page size, real fonts) or Pillow; encrypted ones
from pypdf; office files are written as the minimal ZIP packages the OOXML
standard requires; a decompression bomb is a PNG header that promises far more
pixels than its few bytes could ever hold.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import Image, ImageChops, ImageDraw
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML

WORDS = ("QUICK", "BROWN", "FOXES", "JUMP", "OVER", "LAZY", "DOGS")


def html_pdf(body: str, *, size: str = "A4", css: str = "", pages: int = 1) -> bytes:
    """A PDF of ``pages`` pages of ``size`` (a CSS @page size such as "A4 landscape")."""
    sections = "".join(f"<section>{body}</section>" for _ in range(pages))
    return HTML(string=(
        f"<html><head><style>@page {{ size: {size}; margin: 0 }} body {{ margin: 0 }}"
        f"section {{ break-after: page }} section:last-child {{ break-after: auto }} {css}</style>"
        f"</head><body>{sections}</body></html>")).write_pdf()


def text_pdf(pages: int = 1, size: str = "A4") -> bytes:
    words = " ".join(WORDS)
    return html_pdf(f"<p style='font: 16pt sans-serif; margin: 30mm'>{words}</p>", size=size, pages=pages)


def tinted_scan_pdf() -> bytes:
    """text_pdf as a 150-dpi greyscale scan of yellowed paper: paper at grey ~200
    with grain, ink at ~60, soft edges, stored as JPEG in a PDF (as scanners do)."""
    import random

    import pypdfium2 as pdfium
    from PIL import ImageFilter

    document = pdfium.PdfDocument(text_pdf())
    try:
        clean = document[0].render(scale=150 / 72, grayscale=True).to_pil().convert("L")
    finally:
        document.close()
    tinted = clean.point(lambda v: 60 + v * (200 - 60) // 255)
    noise = random.Random(3)
    grain_bytes = bytes(noise.randrange(0, 24) for _ in range(tinted.width * tinted.height))
    grain = Image.frombytes("L", tinted.size, grain_bytes)
    scan = ImageChops.subtract(ImageChops.add(tinted, grain), Image.new("L", tinted.size, 12))
    scan = scan.filter(ImageFilter.GaussianBlur(0.7))
    out = io.BytesIO()
    scan.save(out, format="PDF", resolution=150)
    return out.getvalue()


def framed_pdf(size: str) -> bytes:
    """A page whose edges carry a 2 mm black frame: shows how the page was fitted."""
    return html_pdf("<div style='position: absolute; inset: 0; border: 2mm solid black'></div>", size=size)


def landscape_pdf() -> bytes:
    """A landscape page with a black bar along its whole top edge."""
    return html_pdf("<div style='height: 15mm; background: black'></div>", size="A4 landscape")


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def photo(width: int = 800, height: int = 600) -> Image.Image:
    """A smooth colour picture: every grey level, as in a photograph."""
    gradient = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90).resize((width, height)),
                               Image.new("L", (width, height), 128)))


def image_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def grey_card(level: int, size: tuple[int, int] = (600, 600)) -> Image.Image:
    return Image.new("L", size, level)


def marked_portrait(width: int = 600, height: int = 800) -> Image.Image:
    """A portrait picture with a black block in its top-left corner."""
    image = Image.new("RGB", (width, height), "white")
    ImageDraw.Draw(image).rectangle((0, 0, width // 4, height // 8), fill="black")
    return image


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims width x height pixels (10 giga-pixels by default)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    # Rows of zeros compress to almost nothing: the whole point of a bomb.
    body = zlib.compress(b"\x00" * (1 << 20), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
{overrides}
</Types>"""
_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1"
  Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="{target}"/>
</Relationships>"""


def docx(paragraphs: list[str]) -> bytes:
    body = "".join(f"<w:p><w:r><w:rPr><w:sz w:val='32'/></w:rPr><w:t xml:space='preserve'>{text}</w:t></w:r></w:p>"
                   for text in paragraphs)
    document = ("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
                "<w:document xmlns:w='http://schemas.openxmlformats.org/wordprocessingml/2006/main'>"
                f"<w:body>{body}</w:body></w:document>")
    override = ('<Override PartName="/word/document.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>')
    return _zip({
        "[Content_Types].xml": _CONTENT_TYPES.format(overrides=override),
        "_rels/.rels": _ROOT_RELS.format(target="word/document.xml"),
        "word/document.xml": document,
    })


def xlsx(rows: list[list[str]]) -> bytes:
    def cell(column: int, row: int, value: str) -> str:
        return f"<c r='{chr(65 + column)}{row}' t='inlineStr'><is><t>{value}</t></is></c>"
    sheet_rows = "".join(
        f"<row r='{r + 1}'>{''.join(cell(c, r + 1, v) for c, v in enumerate(row))}</row>"
        for r, row in enumerate(rows))
    sheet = ("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
             "<worksheet xmlns='http://schemas.openxmlformats.org/spreadsheetml/2006/main'>"
             f"<sheetData>{sheet_rows}</sheetData></worksheet>")
    workbook = ("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
                "<workbook xmlns='http://schemas.openxmlformats.org/spreadsheetml/2006/main' "
                "xmlns:r='http://schemas.openxmlformats.org/officeDocument/2006/relationships'>"
                "<sheets><sheet name='Sheet1' sheetId='1' r:id='rId1'/></sheets></workbook>")
    workbook_rels = ("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
                     "<Relationships xmlns='http://schemas.openxmlformats.org/package/2006/relationships'>"
                     "<Relationship Id='rId1' Type='http://schemas.openxmlformats.org/officeDocument/2006/"
                     "relationships/worksheet' Target='worksheets/sheet1.xml'/></Relationships>")
    overrides = (
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
    return _zip({
        "[Content_Types].xml": _CONTENT_TYPES.format(overrides=overrides),
        "_rels/.rels": _ROOT_RELS.format(target="xl/workbook.xml"),
        "xl/workbook.xml": workbook,
        "xl/_rels/workbook.xml.rels": workbook_rels,
        "xl/worksheets/sheet1.xml": sheet,
    })


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()
