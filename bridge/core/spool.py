"""The spool: files faxbridge must not lose, and how they are written to disk for good.

Where it sits: the SMTP intake writes each accepted message here before its 250; steps
write parts and rendered faxes into the submission's directory; the outbox writes every
outgoing mail here before it is queued. Layout under `paths.spool_dir`:

    incoming/<submission id>.eml    accepted messages, exactly as received
    work/<submission id>/           what the steps make of one (parts/, the fax TIFF)
    outgoing/<mail id>.eml          mail waiting for the mail runner

Accepted messages sit flat in one directory so the intake pays one file fsync per
message and one directory fsync per group of messages.

"Durable" means: the file's data is fsynced, then its directory is fsynced, so both the
bytes and the name survive a power cut. The database row that points at a file is
committed only after that.
"""

from __future__ import annotations

import os
from pathlib import Path


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.work = root / "work"
        self.outgoing = root / "outgoing"

    def create(self) -> None:
        for directory in (self.root, self.incoming, self.work, self.outgoing):
            directory.mkdir(parents=True, exist_ok=True)
        fsync_directory(self.root)

    def message_path(self, submission_id: str) -> Path:
        return self.incoming / f"{submission_id}.eml"

    def work_dir(self, submission_id: str) -> Path:
        return self.work / submission_id

    def outgoing_path(self, mail_id: str) -> Path:
        return self.outgoing / f"{mail_id}.eml"


def write_durably(path: Path, data: bytes, *, sync_directory: bool = True, sync_file: bool = True) -> None:
    """Write `data` to `path` via a temporary name, fsync it, rename it into place.

    With `sync_directory=False` the caller promises to fsync the directory itself (the
    intake does, once for a whole group of messages). With `sync_file=False` too, the
    caller fsyncs the file later, before anything that points at it is committed (the
    inbound runner does, for a whole batch at once; a crash before that only loses work
    that is done again).
    """
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync_file:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    if sync_directory:
        fsync_directory(path.parent)


def fsync_file(path: Path) -> None:
    _fsync(path, os.O_RDONLY)


def fsync_directory(directory: Path) -> None:
    _fsync(directory, os.O_RDONLY | os.O_DIRECTORY)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
