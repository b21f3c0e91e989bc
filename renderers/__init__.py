"""Renderers: documents in, fax pages out (and fax pages back out as PDF).

The intake pipeline's ``render`` step hands this package the documents of one
submission (``SourceDocument``) and gets back one TIFF-F fax (``RenderedFax``) or
a ``DocumentsRefused`` naming each document that cannot be faxed and why; the
inbound side uses ``fax_tiff_to_pdf`` for previews. Nothing here knows about SMTP,
accounts or money.

    render_fax(documents, out_path, options, cover=..., header=...) -> RenderedFax
    fax_tiff_to_pdf(tiff_path) -> bytes
    detect_type(data, filename, declared) -> MIME type by content
    write_fax_tiff(pages, out_path, resolution=..., compression=...)   (renderers.faxtiff)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from renderers.detect import ACCEPTED_TYPES_TEXT, detect_type
    from renderers.faxtiff import write_fax_tiff
    from renderers.model import (
        CoverPage,
        DocumentRefused,
        DocumentsRefused,
        FaxHeader,
        RenderedFax,
        RenderOptions,
        SourceDocument,
    )
    from renderers.preview import fax_tiff_to_pdf
    from renderers.render import render_fax

# Each name is imported from its module when first used: importing one light module of
# the package (renderers.worker, say, which the server's inbound worker pool and every
# `faxbridge` command reach) does not load WeasyPrint, pdfium and LibreOffice's glue.
_WHERE = {
    "ACCEPTED_TYPES_TEXT": "renderers.detect", "detect_type": "renderers.detect",
    "write_fax_tiff": "renderers.faxtiff",
    "CoverPage": "renderers.model", "DocumentRefused": "renderers.model", "DocumentsRefused": "renderers.model",
    "FaxHeader": "renderers.model", "RenderedFax": "renderers.model", "RenderOptions": "renderers.model",
    "SourceDocument": "renderers.model",
    "fax_tiff_to_pdf": "renderers.preview",
    "render_fax": "renderers.render",
}

__all__ = [
    "ACCEPTED_TYPES_TEXT",
    "CoverPage",
    "DocumentRefused",
    "DocumentsRefused",
    "FaxHeader",
    "RenderOptions",
    "RenderedFax",
    "SourceDocument",
    "detect_type",
    "fax_tiff_to_pdf",
    "render_fax",
    "write_fax_tiff",
]
assert sorted(__all__) == sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'renderers' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
