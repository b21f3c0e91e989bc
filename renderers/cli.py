"""``faxbridge render INPUT... --out fax.tif``: the render step from the command line.

So a customer or an administrator can see exactly what a fax will look like: the
same render_fax the intake pipeline runs, on files from disk. Prints the pages of
each input (and of the cover), and for each refused input its reason; exits 1 if
anything was refused, 2 on bad usage. Also ``python -m renderers.cli``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from renderers.model import CoverPage, DocumentRefused, DocumentsRefused, RenderOptions, SourceDocument
from renderers.preview import fax_tiff_to_pdf
from renderers.render import COVER_LABEL, render_fax


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faxbridge render",
                                     description="Render documents into a fax (TIFF-F) as faxbridge would send it.")
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="documents to fax, in order")
    parser.add_argument("--out", required=True, type=Path, help="where to write the fax TIFF")
    parser.add_argument("--standard", action="store_true", help="standard resolution (98 lpi) instead of fine")
    coding = parser.add_mutually_exclusive_group()
    coding.add_argument("--g3", action="store_true", help="CCITT G3 1-D coding instead of G4")
    coding.add_argument("--g3-2d", action="store_true", help="CCITT G3 2-D coding instead of G4")
    parser.add_argument("--paper", choices=("a4", "letter"), default="a4")
    parser.add_argument("--no-cover", action="store_true", help="do not add a cover page")
    parser.add_argument("--subject", default="", help="subject shown on the cover page")
    parser.add_argument("--pdf", type=Path, help="also write a PDF preview of the fax here")
    parser.add_argument("--soffice", default="soffice", help="LibreOffice program for office documents")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    documents = []
    for path in args.inputs:
        try:
            documents.append(SourceDocument(filename=path.name, content=path.read_bytes()))
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
            return 2
    options = RenderOptions(
        resolution="standard" if args.standard else "fine",
        compression="g3-1d" if args.g3 else "g3-2d" if args.g3_2d else "g4",
        paper=args.paper,
        soffice_path=args.soffice,
    )
    cover = None if args.no_cover else CoverPage(
        sender="", recipient_numbers=(), subject=args.subject, body_text="",
        date=datetime.now(UTC))
    try:
        result = render_fax(documents, args.out, options, cover=cover)
    except DocumentRefused as refused:
        refusals = refused.refusals if isinstance(refused, DocumentsRefused) else (refused,)
        for refusal in refusals:
            print(f"{refusal.filename or '(no file)'}: refused: {refusal.reason}")
        return 1
    for name, pages in result.pages_per_document:
        print(f"{name if name != COVER_LABEL else '(cover page)'}: {pages} page{'s' if pages != 1 else ''}")
    for name, why in result.skipped:
        print(f"{name}: skipped: {why}")
    print(f"{args.out}: {result.page_count} pages")
    if args.pdf:
        args.pdf.write_bytes(fax_tiff_to_pdf(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
