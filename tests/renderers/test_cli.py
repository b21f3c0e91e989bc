"""faxbridge render: the render step from the command line."""

from __future__ import annotations

import subprocess
import sys

from renderers.cli import main
from tests.renderers import documents


def test_render_prints_pages_per_input_and_writes_a_valid_fax(tmp_path, check_fax, capsys):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(documents.text_pdf(pages=2))
    note = tmp_path / "note.txt"
    note.write_text("Hello\n")
    out = tmp_path / "fax.tif"
    assert main([str(pdf), str(note), "--out", str(out), "--standard", "--g3", "--paper", "letter",
                 "--subject", "Hi"]) == 0
    printed = capsys.readouterr().out
    assert "report.pdf: 2 pages" in printed and "note.txt: 1 page" in printed and "(cover page): 1 page" in printed
    check_fax(out, pages=4, resolution="standard", compression="g3-1d", paper="letter")


def test_a_refused_input_prints_its_reason_and_exits_non_zero(tmp_path):
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(documents.encrypted_pdf())
    result = subprocess.run([sys.executable, "-m", "renderers.cli", str(locked), "--out",
                             str(tmp_path / "fax.tif"), "--no-cover"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "locked.pdf: refused:" in result.stdout and "password" in result.stdout
