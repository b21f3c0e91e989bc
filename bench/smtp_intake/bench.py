"""SMTP intake benchmark: how fast faxbridge durably takes in mail, against three yardsticks.

One run, on one machine, drives the same load with Postfix's `smtp-source` (by default
5000 messages of 50 KB over 20 parallel sessions, several messages per connection) against:

  (a) faxbridge with durable intake: the real `faxbridge serve`, fresh SQLite and spool;
  (b) a do-nothing aiosmtpd handler (null_aiosmtpd.py): the ceiling of the library;
  (c) Postfix's `smtp-sink`: a C server that discards everything, the ceiling of the client;
  (d) a private Postfix instance that fsyncs every message into its queue, on hold, before
      answering 250: the durable intake faxbridge aims to beat.

It prints msg/s and server CPU for each, faxbridge / aiosmtpd and faxbridge / Postfix,
faxbridge's peak memory (server + children at one instant, as PSS; its own VmHWM beside
it), and checks that every message smtp-source
sent was stored (faxbridge submissions, Postfix hold-queue files). Every server listens on
127.0.0.1 on a free port, works in a temp dir, and is stopped and removed at the end, also
on error or Ctrl-C. Run it with `bash bench/smtp_intake/run` (see README.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
FAXBRIDGE = VENV_BIN / "faxbridge"

SENDER = "bench@example.com"
# A number at the fax domain: faxbridge accepts it at RCPT time.
RECIPIENT = "15551234567@fax.localhost"

# The targets MET/MISSED is printed against (issue 2).
TARGET_RATIO_TO_AIOSMTPD = 0.7
TARGET_PEAK_RSS_MB = 200.0

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_smtp(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Return once a 220 greeting comes from 127.0.0.1:port; raise if the server died."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
                greeting = sock.recv(512)
                sock.sendall(b"QUIT\r\n")
                if greeting.startswith(b"220"):
                    return
                last_error = f"greeting {greeting[:80]!r}"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"no SMTP greeting on port {port} after {timeout:.0f} s ({last_error})")


def stop_process_group(proc: subprocess.Popen[bytes] | None, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process group proc leads, then SIGKILL it if it is still there."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # Children may outlive a leader that exited: the group id is still theirs.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait(5)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages (the temp dir is deleted after)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_checked(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> str:
    """Run a set-up command; raise with its output if it fails."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}".strip()
        )
    return done.stdout


def session_stats(sid: int) -> dict[int, int]:
    """CPU ticks (user + system) of every process in session sid: a server started with
    start_new_session, or Postfix's master (which calls setsid), and all they fork."""
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which may itself hold spaces and parentheses:
        # state ppid pgrp session ... utime(11) stime(12).
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    return ticks


def session_pids(sid: int) -> list[int]:
    return list(session_stats(sid))


def status_kb(pid: int, key: str) -> int | None:
    """A kB figure (VmHWM, VmRSS) from /proc/PID/status, or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def smaps_pss_kb(pid: int) -> int | None:
    """Proportional set size: each shared page divided among the processes mapping it."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class SessionSampler:
    """Samples a server's processes (its session) while the load runs.

    Memory: the server process's own VmHWM (the kernel's exact peak), and the largest
    sums over the processes alive at one sample of PSS (shared pages counted once: what
    a container's memory limit sees) and of RSS (shared pages counted in every process).
    Summing each process's VmHWM instead would add up forked children that never lived
    at the same time, so it is not done. CPU: time used since start() by every process
    (one that exits between two samples loses at most one interval).
    """

    def __init__(self, sid: int, interval: float = 0.1) -> None:
        self.sid = sid
        self.interval = interval
        self.server_hwm_kb = 0
        self.peak_pss_kb = 0
        self.peak_rss_kb = 0
        self.first_ticks: dict[int, int] = {}
        self.last_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> None:
        self.sample()
        self.first_ticks = dict(self.last_ticks)
        self._thread.start()

    def sample(self) -> None:
        pss_total = rss_total = 0
        for pid, ticks in session_stats(self.sid).items():
            self.last_ticks[pid] = ticks
            pss_total += smaps_pss_kb(pid) or 0
            rss_total += status_kb(pid, "VmRSS") or 0
        self.peak_pss_kb = max(self.peak_pss_kb, pss_total)
        self.peak_rss_kb = max(self.peak_rss_kb, rss_total)
        hwm = status_kb(self.sid, "VmHWM")
        if hwm is not None:
            self.server_hwm_kb = max(self.server_hwm_kb, hwm)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        """Stop sampling, after a last reading taken while the server still runs."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sample()

    @property
    def processes_seen(self) -> int:
        return len(self.last_ticks)

    @property
    def cpu_seconds(self) -> float:
        used = sum(t - self.first_ticks.get(pid, 0) for pid, t in self.last_ticks.items())
        return used / CLOCK_TICKS


# --------------------------------------------------------------------------- targets


class Target:
    """A server under test. start() returns its port; stop() is idempotent and safe after a
    failed start; stored() (after stop) counts what it durably kept, when that means anything."""

    key = ""
    title = ""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path()
        # Remarks on what stored() found, printed under the table.
        self.notes: list[str] = []
        self.log = Path()

    def start(self, workdir: Path) -> int:
        raise NotImplementedError

    def _spawn(
        self, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.log = self.workdir / "server.log"
        with open(self.log, "ab") as log:
            # A session of its own: SIGTERM reaches the server and every child it forks,
            # and session_pids() finds them all for the RSS figure.
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self.proc

    def server_pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        stop_process_group(self.proc)

    def stored(self) -> tuple[int, str] | None:
        return None

    def log_tail(self) -> str:
        return tail(self.log)


class SmtpSink(Target):
    key = "c"
    title = "Postfix smtp-sink (discards)"

    def start(self, workdir: Path) -> int:
        self.workdir = workdir
        port = free_port()
        cmd = ["smtp-sink"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        self._spawn(cmd + [f"127.0.0.1:{port}", "256"])
        wait_for_smtp(port, self.proc, START_TIMEOUT_S)
        return port


class NullAiosmtpd(Target):
    key = "b"
    title = "aiosmtpd 250-to-all (no storage)"

    def start(self, workdir: Path) -> int:
        self.workdir = workdir
        port = free_port()
        self._spawn([str(PYTHON), str(HERE / "null_aiosmtpd.py"), "--port", str(port)])
        wait_for_smtp(port, self.proc, START_TIMEOUT_S)
        return port


POSTFIX_MASTER_CF = """\
# Only the SMTP listener and the internal services a message needs to reach the queue;
# chroot=n everywhere so no copy of /etc is needed under the queue directory. No smtp,
# lmtp, local or pipe service: nothing is ever delivered.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
proxywrite unix - - n -    1 proxymap
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

POSTFIX_MAIN_CF = """\
# A private, durable-but-never-delivering Postfix for the intake benchmark.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localhost
mydomain = localhost
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_reject_unlisted_recipient = no
# Every message is queued on hold: cleanup still writes and fsyncs the queue file before
# smtpd answers 250, but the queue manager never schedules it.
smtpd_data_restrictions = check_client_access static:HOLD
# Belt and braces: any delivery attempt at all would bounce instead of leaving the machine.
default_transport = error:benchmark instance delivers nothing
relay_transport = error:benchmark instance delivers nothing
local_transport = error:benchmark instance delivers nothing
virtual_transport = error:benchmark instance delivers nothing
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
syslog_name = postfix-bench
maillog_file = {log}/postfix.log
# Without this, `postfix check` refuses a maillog_file outside /var (and says little).
maillog_file_prefixes = {log}
"""


class DurablePostfix(Target):
    key = "d"
    title = "Postfix durable (queued on hold)"

    def __init__(self) -> None:
        super().__init__()
        self.etc = Path()
        self.queue = Path()
        self.started = False

    def start(self, workdir: Path) -> int:
        self.workdir = workdir
        # Postfix daemons run as user postfix and must reach the queue under this dir.
        workdir.chmod(0o755)
        self.etc, self.queue = workdir / "etc", workdir / "queue"
        data, logdir = workdir / "data", workdir / "log"
        for path in (self.etc, self.queue, data, logdir):
            path.mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
        self.log = logdir / "postfix.log"
        port = free_port()
        (self.etc / "main.cf").write_text(
            POSTFIX_MAIN_CF.format(queue=self.queue, data=data, log=logdir)
        )
        (self.etc / "master.cf").write_text(POSTFIX_MASTER_CF.format(port=port))
        # `postfix start` creates the queue directories with their owners, then backgrounds
        # master; it returns before smtpd is reachable, hence wait_for_smtp.
        run_checked(["postfix", "-c", str(self.etc), "check"])
        self.started = True
        run_checked(["postfix", "-c", str(self.etc), "start"])
        wait_for_smtp(port, None, START_TIMEOUT_S)
        return port

    def master_pid(self) -> int | None:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def server_pid(self) -> int | None:
        return self.master_pid()

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        if pid is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        # master takes its children down with it; SIGKILL only if it ignored the stop.
        for leftover in [pid] + session_pids(pid):
            try:
                os.kill(leftover, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stored(self) -> tuple[int, str]:
        hold = sum(len(files) for _, _, files in os.walk(self.queue / "hold"))
        return hold, "queue files on hold"


class Faxbridge(Target):
    key = "a"
    title = "faxbridge durable intake"

    def __init__(self) -> None:
        super().__init__()
        self.site = Path()
        self.var = Path()

    def cli(self, *args: str) -> str:
        return run_checked(
            [str(FAXBRIDGE), "--config", str(self.site), *args], cwd=self.workdir, env=self.env
        )

    @property
    def env(self) -> dict[str, str]:
        # Import faxbridge from this checkout, whatever the venv's editable-install finder
        # recorded when it was made (it misses packages created after `pip install -e`).
        # A PYTHONPATH the caller set stays in front.
        paths = [p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p]
        return os.environ | {"PYTHONPATH": os.pathsep.join(paths)}

    def start(self, workdir: Path) -> int:
        self.workdir = workdir
        if not FAXBRIDGE.exists():
            raise RuntimeError(f"{FAXBRIDGE} not found: run scripts/setup first")
        port = free_port()
        self.var = workdir / "var"
        self.site = workdir / "site.toml"
        self.site.write_text(
            f"""\
[paths]
var_dir = "{self.var}"
spool_dir = "{self.var}/spool"

[database]
url = "sqlite+aiosqlite:///{self.var}/faxbridge.db"

[mail]
maildir_root = "{self.var}/mail"

[[smtp.listeners]]
name = "bench"
host = "127.0.0.1"
port = {port}
tls = "none"
starttls = false
require_tls = false
auth = "none"
"""
        )
        self.cli("db", "upgrade")
        self.cli("account", "add", SENDER)
        self._spawn([str(FAXBRIDGE), "--config", str(self.site), "serve"], cwd=workdir, env=self.env)
        wait_for_smtp(port, self.proc, START_TIMEOUT_S)
        return port

    def stored(self) -> tuple[int, str]:
        """Accepted submissions in faxbridge's own database (the server has stopped).

        Cross-checked against the spool's accepted-message files and the distinct
        Message-IDs, so a deduplicated resubmission or a row without its file shows up.
        """
        db = self.var / "faxbridge.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows, message_ids = conn.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM submissions"
            ).fetchone()
        files = len(list((self.var / "spool" / "incoming").glob("*.eml")))
        self.notes = [
            f"{rows} submission rows, {files} spool/incoming/*.eml files, "
            f"{message_ids} distinct Message-IDs"
        ]
        if files != rows:
            self.notes.append("spool files and submission rows differ")
        return int(rows), "submissions in the DB"


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    key: str
    title: str
    sent: int = 0
    seconds: float = 0.0
    stored: int | None = None
    stored_what: str = ""
    server_hwm_kb: int | None = None
    peak_pss_kb: int | None = None
    peak_rss_kb: int | None = None
    processes_seen: int | None = None
    cpu_seconds: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def run_load(port: int, args: argparse.Namespace) -> tuple[int, float, str]:
    """Drive smtp-source against port; return messages sent, wall seconds, and any error.

    -d keeps each session's connection for many messages (as a relay does); -c prints a
    counter after every completed DATA, which is how many messages were acknowledged.
    """
    cmd = [
        "smtp-source", "-c", "-d",
        "-s", str(args.sessions), "-m", str(args.messages), "-l", str(args.size),
        "-M", "bench-client.localhost", "-S", "smtp intake benchmark",
        "-f", SENDER, "-t", RECIPIENT,
        f"127.0.0.1:{port}",
    ]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.load_timeout)
    seconds = time.monotonic() - started
    counts = re.findall(r"\d+", done.stdout)
    sent = int(counts[-1]) if counts else 0
    error = None
    if done.returncode != 0:
        error = f"smtp-source exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return sent, seconds, error or ""


def measure(target: Target, args: argparse.Namespace) -> Result:
    """Start target in a fresh temp dir, load it, stop it, count what it kept, clean up."""
    result = Result(target.key, target.title)
    workdir = Path(tempfile.mkdtemp(prefix=f"smtp-intake-{target.key}-"))
    sampler: SessionSampler | None = None
    print(f"({target.key}) {target.title}: starting", file=sys.stderr, flush=True)
    try:
        port = target.start(workdir)
        pid = target.server_pid()
        if pid is not None:
            sampler = SessionSampler(pid)
            sampler.start()
        print(f"({target.key}) loading 127.0.0.1:{port}", file=sys.stderr, flush=True)
        result.sent, result.seconds, error = run_load(port, args)
        if error:
            result.error = error
        if sampler is not None:
            sampler.stop()
            result.server_hwm_kb = sampler.server_hwm_kb
            result.peak_pss_kb = sampler.peak_pss_kb
            result.peak_rss_kb = sampler.peak_rss_kb
            result.processes_seen = sampler.processes_seen
            result.cpu_seconds = sampler.cpu_seconds
            sampler = None
        target.stop()
        kept = target.stored()
        if kept is not None:
            result.stored, result.stored_what = kept
        result.notes.extend(target.notes)
    except Exception as exc:  # noqa: BLE001 - recorded: one broken target must not hide the others' figures
        result.error = f"{type(exc).__name__}: {exc}"
        log = target.log_tail()
        if log:
            result.error += "\n  server log:\n    " + log.replace("\n", "\n    ")
    finally:
        if sampler is not None:
            sampler.stop()
        target.stop()
        if args.keep:
            result.notes.append(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    state = "failed" if result.error else f"{result.rate:.0f} msg/s"
    print(f"({target.key}) done: {state}", file=sys.stderr, flush=True)
    return result


def mark(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def best_round(rounds: list[Result]) -> Result:
    """The fastest round that ran to the end, else the first (failed) one."""
    finished = [r for r in rounds if not r.error]
    return max(finished, key=lambda r: r.rate) if finished else rounds[0]


def report(rounds: dict[str, list[Result]], args: argparse.Namespace) -> bool:
    """Print the table, ratios, targets and checks; return whether every check passed.

    With several rounds, the table and the ratios use each target's best round: on a
    shared machine the slow rounds measure the neighbours, not the server.
    """
    results = {key: best_round(rs) for key, rs in rounds.items()}
    ok = True
    print()
    print(
        f"smtp_intake: {args.messages} messages x {args.size} bytes, {args.sessions} sessions, "
        f"smtp-source -d; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}"
        + (f"; best of {args.rounds} rounds" if args.rounds > 1 else "")
    )
    # Anything else running on the machine skews every figure; say how busy it was.
    print(f"load average at start: {args.load_at_start}")
    print()
    header = (
        f"{'target':<38} {'msg/s':>8} {'seconds':>8} {'sent':>6} {'stored':>7} "
        f"{'srv CPU s':>9} {'peak PSS':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results.values():
        name = f"({r.key}) {r.title}"
        if r.error and not r.sent:
            print(f"{name:<38} {'FAILED':>8}")
            continue
        stored = "" if r.stored is None else str(r.stored)
        rss = "" if r.peak_pss_kb is None else f"{r.peak_pss_kb / 1024:.1f} MB"
        cpu = "" if r.cpu_seconds is None else f"{r.cpu_seconds:.1f}"
        print(
            f"{name:<38} {r.rate:8.1f} {r.seconds:8.2f} {r.sent:6d} {stored:>7} "
            f"{cpu:>9} {rss:>10}"
        )
    if args.rounds > 1:
        for key, rs in rounds.items():
            rates = ", ".join("failed" if r.error else f"{r.rate:.1f}" for r in rs)
            print(f"  ({key}) msg/s of every round: {rates}")
    print()

    fax, null, pfx = results.get("a"), results.get("b"), results.get("d")
    if fax and null and fax.rate and null.rate:
        ratio = fax.rate / null.rate
        print(
            f"faxbridge / do-nothing aiosmtpd : {ratio:5.2f}   target >= "
            f"{TARGET_RATIO_TO_AIOSMTPD:.2f}  {mark(ratio >= TARGET_RATIO_TO_AIOSMTPD)}"
        )
    if fax and pfx and fax.rate and pfx.rate:
        ratio = fax.rate / pfx.rate
        print(f"faxbridge / durable Postfix     : {ratio:5.2f}   (long-term aim >= 1.00)")
    if fax and fax.peak_pss_kb is not None:
        pss = fax.peak_pss_kb / 1024
        print(
            f"faxbridge peak memory (server + children at one instant, sum of PSS): "
            f"{pss:.1f} MB   target <= {TARGET_PEAK_RSS_MB:.0f} MB  "
            f"{mark(pss <= TARGET_PEAK_RSS_MB)}"
        )
        print(
            f"  server process VmHWM {(fax.server_hwm_kb or 0) / 1024:.1f} MB; sum of RSS "
            f"at one instant {(fax.peak_rss_kb or 0) / 1024:.1f} MB (shared pages counted "
            f"per process); {fax.processes_seen} processes seen"
        )
    print()

    checked = [r for key in ("a", "d") for r in rounds.get(key, []) if not r.error]
    for r in checked:
        good = r.stored == r.sent and r.sent == args.messages
        ok = ok and good
        print(
            f"check ({r.key}): {r.stored} {r.stored_what}, smtp-source sent {r.sent} "
            f"of {args.messages}  {'OK' if good else 'MISMATCH'}"
        )
    for r in (r for rs in rounds.values() for r in rs):
        if r.error:
            ok = False
            print(f"error ({r.key}) {r.title}: {r.error}")
        for note in r.notes:
            print(f"note ({r.key}): {note}")
    return ok


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so every `finally` stops its server.

    A BaseException, like KeyboardInterrupt, so measure() does not record it as one
    target's failure and go on to the next."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=50 * 1024, help="payload bytes a message")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument(
        "--only", default="abcd", help="targets to run, e.g. 'ab' (a faxbridge, b aiosmtpd, "
        "c smtp-sink, d Postfix)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="run the targets this many times, interleaved, and report each one's best",
    )
    parser.add_argument("--load-timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (debugging)")
    args = parser.parse_args()

    for tool in ("smtp-source", "smtp-sink", "postfix"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found: install scripts/apt/bench-smtp.txt (scripts/setup)")

    signal.signal(signal.SIGTERM, on_sigterm)
    args.load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # Progress goes to stderr; keep the report from interleaving with it.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    kinds: list[type[Target]] = [Faxbridge, NullAiosmtpd, SmtpSink, DurablePostfix]
    rounds: dict[str, list[Result]] = {}
    try:
        # Interleaved (a b c d a b c d ...) so a burst of outside load hits every target
        # alike rather than all rounds of one.
        for _ in range(args.rounds):
            for kind in kinds:
                if kind.key in args.only:
                    rounds.setdefault(kind.key, []).append(measure(kind(), args))
    except (Interrupted, KeyboardInterrupt):
        # measure()'s `finally` has already stopped the server and removed its temp dir.
        print("smtp_intake: interrupted; servers stopped, temp dirs removed", file=sys.stderr)
        return 143
    ok = report(rounds, args)
    if args.json:
        figures = {k: [asdict(r) | {"rate": r.rate} for r in rs] for k, rs in rounds.items()}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
