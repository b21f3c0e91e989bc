"""Office documents to PDF with LibreOffice: DOCX, XLSX, PPTX, ODT, ODS, ODP, RTF, DOC, XLS, PPT.

``soffice --headless --convert-to pdf`` runs once per document, in its own
session (so a timeout can kill the whole process group) with a private profile
directory (so conversions never share or lock a profile, and a document's macros
or settings cannot persist). The PDF then goes to renderers.pdf. Called inside a
worker process, which carries the time and memory limits.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from renderers import detect
from renderers.model import DocumentRefused

_EXTENSIONS = {
    detect.DOCX: ".docx", detect.XLSX: ".xlsx", detect.PPTX: ".pptx", detect.ODT: ".odt",
    detect.ODS: ".ods", detect.ODP: ".odp", detect.RTF: ".rtf", detect.DOC: ".doc",
    detect.XLS: ".xls", detect.PPT: ".ppt",
}
_TYPE_NAMES = {
    detect.DOCX: "Word (DOCX)", detect.XLSX: "Excel (XLSX)", detect.PPTX: "PowerPoint (PPTX)",
    detect.ODT: "OpenDocument text (ODT)", detect.ODS: "OpenDocument spreadsheet (ODS)",
    detect.ODP: "OpenDocument presentation (ODP)", detect.RTF: "RTF", detect.DOC: "Word (DOC)",
    detect.XLS: "Excel (XLS)", detect.PPT: "PowerPoint (PPT)",
}
# LibreOffice maps a lot of address space it never touches; it needs more room than
# the renderers themselves, and it is not the part that parses with pdfium.
_SOFFICE_MIN_ADDRESS_SPACE = 4 * 1024 * 1024 * 1024


def office_to_pdf(data: bytes, kind: str, label: str, *, soffice: str, timeout: float,
                  memory_bytes: int) -> bytes:
    """Convert an office document to PDF bytes, or refuse it with a reason."""
    executable = shutil.which(soffice)
    if executable is None:
        raise DocumentRefused(label, (
            f"{_TYPE_NAMES.get(kind, 'Office')} documents cannot be converted on this service at "
            f"the moment. Please save it as PDF and send it again; the types accepted are "
            f"PDF, plain text, HTML and images (PNG, JPEG, GIF, BMP, WebP, TIFF)."))
    with tempfile.TemporaryDirectory(prefix="faxbridge-soffice-") as work:
        base = Path(work)
        # The sender's file name never reaches the command line or the file system.
        source = base / f"document{_EXTENSIONS.get(kind, '.bin')}"
        source.write_bytes(data)
        outdir = base / "out"
        profile = base / "profile"
        command = [
            executable, "--headless", "--invisible", "--nologo", "--norestore", "--nolockcheck",
            "--nodefault", f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to", "pdf", "--outdir", str(outdir), str(source),
        ]
        limit = max(memory_bytes, _SOFFICE_MIN_ADDRESS_SPACE)
        env = {**os.environ, "HOME": str(base), "SAL_USE_VCLPLUGIN": "svp"}
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=base, env=env,
            start_new_session=True, preexec_fn=lambda: _limit_memory(limit))
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise DocumentRefused(label, (
                f"Converting it took longer than {timeout:.0f} seconds, so it was stopped. "
                "Please save it as PDF and send it again.")) from None
        finally:
            # soffice.bin can outlive the wrapper script; leave nothing behind.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        result = outdir / "document.pdf"
        if process.returncode != 0 or not result.exists() or result.stat().st_size == 0:
            tail = output.decode("utf-8", "replace").strip().splitlines()[-1:] if output else []
            raise DocumentRefused(label, (
                f"It could not be converted ({'; '.join(tail) or 'LibreOffice failed'}, after "
                f"{time.monotonic() - started:.0f} s). The file may be damaged or protected "
                "by a password. Please save it as PDF and send it again."))
        return result.read_bytes()


def _limit_memory(limit: int) -> None:
    # The worker's own soft limit is lower; soffice gets its own, still bounded.
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
