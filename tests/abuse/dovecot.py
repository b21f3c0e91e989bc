"""A private Dovecot on loopback for the abuse mailbox's tests and benchmark.

Where it sits: tests/abuse (and bench/abuse) start one per test in a temporary
directory: its own config, state, log, self-signed certificate and a passwd-file user
whose Maildir belongs to uid/gid 65534 (Dovecot refuses uid 0). Nothing under
/etc/dovecot is read or changed; the system daemon is never used.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MAIL_UID = 65534
USER = "abuse"
PASSWORD = "s3cret-abuse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Dovecot:
    root: Path
    imaps_port: int = 0
    imap_port: int = 0
    running: bool = field(default=False, init=False)

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def home(self) -> Path:
        return self.root / "home" / USER

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    @classmethod
    def create(cls) -> Dovecot:
        """A new instance in its own directory under the system temp dir: Dovecot's
        unprivileged processes must reach it, and pytest's tmp_path is mode 0700."""
        root = Path(tempfile.mkdtemp(prefix="faxbridge-dovecot-"))
        return cls(root).write()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self) -> Dovecot:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.imaps_port = self.imaps_port or _free_port()
        self.imap_port = self.imap_port or _free_port()
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(exist_ok=True)
            os.chmod(self.root / sub, 0o755)
        cert, key = self.root / "cert.pem", self.root / "key.pem"
        if not cert.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                check=True, capture_output=True,
            )
        (self.root / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{self.home}::\n"
        )
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self._chown_home()
        self.conf.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
info_log_path = {self.root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {self.root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.root}/passwd
}}
mail_location = maildir:~/Maildir
first_valid_uid = {MAIL_UID}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
"""
        )
        return self

    def _chown_home(self) -> None:
        for path in [self.root / "home", *self.home.rglob("*"), self.home]:
            os.chown(path, MAIL_UID, MAIL_UID)

    def start(self) -> Dovecot:
        # The daemon keeps inherited descriptors open: no pipes, or run() never returns.
        with (self.root / "start.log").open("ab") as out:
            subprocess.run(
                ["dovecot", "-c", str(self.conf)], check=True, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.running = True
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.imaps_port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen:\n{self.log()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop the whole instance, open IMAP sessions included: `doveadm stop` ends
        the master but leaves running imap and imap-login processes serving their
        clients, which is not what a server restart does."""
        if not self.running:
            return
        pid_file = self.root / "run" / "master.pid"
        master = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        if master is not None:
            # The daemon made itself a session leader: its children share its session id.
            self._kill_session(master)
        subprocess.run(
            ["doveadm", "-c", str(self.conf), "stop"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (self.root / "run" / "master.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.running = False

    @staticmethod
    def _kill_session(session_id: int) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == session_id:
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After the ")": state, ppid, pgrp, session
            if int(fields[3]) == session_id:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- putting reports in and looking at folders -------------------------------------
    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        imap = self.client()
        try:
            for message in messages:
                status, detail = imap.append(mailbox, None, None, message)
                assert status == "OK", detail
        finally:
            imap.logout()

    def deliver(self, message: bytes, name: str) -> None:
        """Write a message straight into the INBOX Maildir, as an LDA would."""
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(message)
        os.chown(tmp, MAIL_UID, MAIL_UID)
        os.rename(tmp, self.maildir / "new" / name)

    def count(self, mailbox: str) -> int:
        imap = self.client()
        try:
            status, data = imap.select(mailbox, readonly=True)
            return int(data[0]) if status == "OK" else 0
        finally:
            imap.logout()

    def messages(self, mailbox: str) -> list[tuple[bytes, bytes]]:
        """(flags, message) of every message in `mailbox`."""
        imap = self.client()
        try:
            status, _ = imap.select(mailbox, readonly=True)
            if status != "OK":
                return []
            _, data = imap.uid("SEARCH", None, "ALL")
            found = []
            for uid in data[0].split():
                _, parts = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                header, body = parts[0]
                found.append((header, body))
            return found
        finally:
            imap.logout()

    def reset_uidvalidity(self) -> None:
        """Throw away Dovecot's index and UID list (as a rebuilt server would): the
        INBOX gets a new UIDVALIDITY and its messages new UIDs. Dovecot must be stopped."""
        assert not self.running
        for path in list(self.maildir.iterdir()):
            if path.name.startswith("dovecot") and path.is_file():
                path.unlink()
        shutil.rmtree(self.root / "home" / USER / "mail", ignore_errors=True)
        # Messages Dovecot had seen were renamed into cur/: move them back to new/.
        for path in (self.maildir / "cur").iterdir():
            os.rename(path, self.maildir / "new" / path.name.split(":")[0])
