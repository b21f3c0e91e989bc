"""Renderers: documents in, fax pages out (and fax pages back out as PDF).

The intake pipeline's ``render`` step hands this package the documents of one
submission; nothing here knows about SMTP, accounts or money.
"""

from __future__ import annotations

from renderers.detect import detect_type
from renderers.faxtiff import write_fax_tiff

__all__ = ["detect_type", "write_fax_tiff"]
