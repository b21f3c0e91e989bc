"""bench/render: faxbridge's renderer against Ghostscript as HylaFAX runs it.

Renders the real-world corpus of `corpus.py` three ways, in the same run on the same
machine, each with `--jobs` documents at a time (default 2, both cores):

* faxbridge: `renderers.render_fax`, one fax per source PDF, in a process pool;
* gs: Ghostscript with the flags of HylaFAX's pdf2fax.gs;
* gs -dBlackText: the same plus -dBlackText (text forced to solid black).

It prints pages/s, kB/page and HylaFAX `tiffcheck` results for text pages and
scan/photo pages separately, and the faxbridge/Ghostscript ratios against the issue's
targets (MET or MISSED). It is a benchmark, not a test: a missed target still exits 0;
only a broken set-up (no Ghostscript, corpus not fetchable) exits non-zero.

Run it with `bash bench/render/run` (see README.md beside this file).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The renderer is imported from the work tree, whatever the virtualenv's editable
# install knew about when it was made.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from corpus import CorpusDocument, CorpusError, Kind, ensure_corpus

# HylaFAX's pdf2fax.gs, A4 (-r209.10x196 makes an A4 page exactly 1728 px wide).
GS_HYLAFAX = [
    "-q", "-sDEVICE=tiffg4", "-dNOPAUSE", "-dSAFER", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
    "-dMaxStripSize=0", "-dBATCH", "-r209.10x196",
]
TIFFCHECK_ARGS = ["-3", "-r", "196", "-w", "1728", "-l", "298"]  # G4, fine, A4

FAXBRIDGE = "faxbridge"
GS = "gs"
GS_BLACKTEXT = "gs -dBlackText"
TOOLS = (FAXBRIDGE, GS, GS_BLACKTEXT)
KINDS: tuple[Kind, ...] = ("text", "scan")
KIND_TITLE = {"text": "Text pages", "scan": "Scan/photo pages"}
KIND_SHORT = {"text": "Text", "scan": "Scan/photo"}

# The targets: faxbridge pages/s >= factor x Ghostscript's, kB/page <= Ghostscript's.
SPEED_TARGET = {"text": 1.0, "scan": 1.5}


@dataclasses.dataclass
class DocResult:
    """One document rendered by one tool."""

    doc: CorpusDocument
    out: Path
    seconds: float
    pages_out: int = 0
    size: int = 0
    error: str = ""
    tiffcheck: str = ""  # "OK" or tiffcheck's complaint; empty when not checked


@dataclasses.dataclass
class Run:
    """One tool over all documents of one kind."""

    tool: str
    kind: Kind
    wall: float
    cpu: float  # CPU seconds of all the work, user + system
    docs: list[DocResult]


# --- faxbridge ---------------------------------------------------------------------------


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and all its descendants.

    Read from /proc: for each live process of the tree its own time plus the time of the
    children it has reaped. That also catches work that is not our direct child (the
    renderer's forkserver forks its render workers, so their time is reaped there).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue  # exited meanwhile
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = raw[raw.rindex(b")") + 2 :].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    me = os.getpid()
    total = 0
    for pid, ticks_used in times.items():
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += ticks_used
    return total / ticks


def _faxbridge_render(src: str, out: str) -> int:
    """Render one PDF into one fax TIFF; returns the page count."""
    from renderers import RenderOptions, SourceDocument, render_fax

    source = Path(src)
    document = SourceDocument(
        filename=source.name, content=source.read_bytes(), declared_type="application/pdf"
    )
    options = RenderOptions(resolution="fine", compression="g4", paper="a4")
    # No cover page and no header line: Ghostscript renders neither.
    rendered = render_fax([document], Path(out), options)
    return int(rendered.page_count)


def _faxbridge_worker_init(stderr_log: str) -> None:
    """Send a pool worker's stderr (and so its render children's) to a log file.

    pdfium prints notices (e.g. about XFA forms) that would bury the tables.
    """
    fd = os.open(stderr_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def _faxbridge_warm() -> str:
    """Import the renderer in a worker so the timed runs do not pay for it."""
    from renderers import render_fax

    return render_fax.__name__


def faxbridge_pool(jobs: int, stderr_log: Path) -> cf.ProcessPoolExecutor:
    stderr_log.parent.mkdir(parents=True, exist_ok=True)
    stderr_log.write_text("")
    pool = cf.ProcessPoolExecutor(
        max_workers=jobs, initializer=_faxbridge_worker_init, initargs=(str(stderr_log),)
    )
    # A long-lived server has warm workers; start and warm all of them before timing.
    for f in [pool.submit(_faxbridge_warm) for _ in range(jobs)]:
        f.result()
    return pool


def run_faxbridge(
    pool: cf.ProcessPoolExecutor, docs: Sequence[CorpusDocument], outdir: Path
) -> tuple[float, float, list[DocResult]]:
    from renderers import DocumentRefused

    outdir.mkdir(parents=True, exist_ok=True)
    results: list[DocResult] = []
    cpu0 = tree_cpu()
    started = time.perf_counter()
    futures: dict[cf.Future[int], DocResult] = {}
    for doc in docs:
        res = DocResult(doc=doc, out=outdir / f"{doc.path.stem}.tif", seconds=0.0)
        res.out.unlink(missing_ok=True)
        futures[pool.submit(_faxbridge_render, str(doc.path), str(res.out))] = res
        results.append(res)
    for fut in cf.as_completed(futures):
        res = futures[fut]
        res.seconds = time.perf_counter() - started
        try:
            res.pages_out = fut.result()
        # A refused document is a result, not a crash (renderers.worker turns whatever a
        # converter raises into a refusal); so is a pool whose worker died.
        except (DocumentRefused, cf.BrokenExecutor) as exc:
            res.error = f"{type(exc).__name__}: {exc}"
        res.size = res.out.stat().st_size if res.out.exists() else 0
    wall = time.perf_counter() - started
    return wall, tree_cpu() - cpu0, results


# --- Ghostscript -------------------------------------------------------------------------


def _gs_render(gs: str, flags: Sequence[str], src: Path, out: Path) -> tuple[int, str]:
    got = subprocess.run(
        [gs, *flags, f"-sOutputFile={out}", str(src)], capture_output=True, text=True
    )
    return got.returncode, (got.stderr or got.stdout).strip()[-300:]


def run_gs(
    gs: str, flags: Sequence[str], docs: Sequence[CorpusDocument], outdir: Path, jobs: int
) -> tuple[float, float, list[DocResult]]:
    outdir.mkdir(parents=True, exist_ok=True)
    results = [DocResult(doc=d, out=outdir / f"{d.path.stem}.tif", seconds=0.0) for d in docs]
    for res in results:
        res.out.unlink(missing_ok=True)
    cpu0 = tree_cpu()
    started = time.perf_counter()
    # Threads only wait on the gs processes: `jobs` Ghostscripts run at once.
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_gs_render, gs, flags, r.doc.path, r.out): r for r in results}
        for fut in cf.as_completed(futures):
            res = futures[fut]
            res.seconds = time.perf_counter() - started
            rc, message = fut.result()
            if rc != 0:
                res.error = f"gs exit {rc}: {message}"
    wall = time.perf_counter() - started
    cpu = tree_cpu() - cpu0
    for res in results:
        res.size = res.out.stat().st_size if res.out.exists() else 0
        res.pages_out = tiff_page_count(res.out) if res.size else 0
    return wall, cpu, results


# --- checks ------------------------------------------------------------------------------


def tiff_page_count(path: Path) -> int:
    """Count the IFDs of a TIFF (one per fax page), reading only the IFD chain."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return 0
        endian = "<" if head[:2] == b"II" else ">"
        (offset,) = struct.unpack(endian + "I", head[4:8])
        pages, seen = 0, set()
        while offset and offset not in seen:
            seen.add(offset)
            f.seek(offset)
            raw = f.read(2)
            if len(raw) < 2:
                break
            (entries,) = struct.unpack(endian + "H", raw)
            f.seek(offset + 2 + 12 * entries)
            raw = f.read(4)
            if len(raw) < 4:
                break
            pages += 1
            (offset,) = struct.unpack(endian + "I", raw)
        return pages


def find_tiffcheck() -> str | None:
    env = os.environ.get("TIFFCHECK")
    if env:
        return env
    local = ROOT / ".tools" / "bin" / "tiffcheck"
    if local.exists():
        return str(local)
    return shutil.which("tiffcheck")


def run_tiffcheck(tiffcheck: str, results: Sequence[DocResult]) -> None:
    for res in results:
        if not res.size:
            res.tiffcheck = "no output"
            continue
        got = subprocess.run(
            [tiffcheck, *TIFFCHECK_ARGS, str(res.out)], capture_output=True, text=True
        )
        lines = (got.stdout + got.stderr).strip().splitlines()
        if got.returncode == 0 and lines[:1] == ["OK"]:
            res.tiffcheck = "OK"
        else:
            # tiffcheck repeats its complaint for every page: once each is enough.
            unique = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
            res.tiffcheck = "; ".join(unique)[:240] or f"exit {got.returncode}"


# --- report ------------------------------------------------------------------------------


@dataclasses.dataclass
class Summary:
    tool: str
    kind: Kind
    pages_in: int
    pages_out: int
    wall: float  # the fastest repetition: other work on the machine only ever adds time
    walls: list[float]
    cpu: float  # median CPU seconds over repetitions
    size: int
    failed_docs: int
    checked: bool
    check_ok_docs: int
    check_ok_pages: int
    docs: int
    paged_pages: int  # output pages of A4/Letter-sized PDFs
    paged_size: int

    @property
    def paged_kb_per_page(self) -> float:
        return self.paged_size / 1000 / self.paged_pages if self.paged_pages else float("nan")

    @property
    def pages_per_s(self) -> float:
        return self.pages_out / self.wall if self.wall else 0.0

    @property
    def kb_per_page(self) -> float:
        return self.size / 1000 / self.pages_out if self.pages_out else float("nan")

    @property
    def cpu_ms_per_page(self) -> float:
        return self.cpu * 1000 / self.pages_out if self.pages_out else float("nan")


def summarize(runs: Sequence[Run], checked: bool) -> Summary:
    last = runs[-1]
    return Summary(
        tool=last.tool,
        kind=last.kind,
        pages_in=sum(r.doc.pages for r in last.docs),
        pages_out=sum(r.pages_out for r in last.docs),
        wall=min(r.wall for r in runs),
        walls=[r.wall for r in runs],
        cpu=statistics.median(r.cpu for r in runs),
        size=sum(r.size for r in last.docs),
        failed_docs=sum(1 for r in last.docs if r.error),
        checked=checked,
        check_ok_docs=sum(1 for r in last.docs if r.tiffcheck == "OK"),
        check_ok_pages=sum(r.pages_out for r in last.docs if r.tiffcheck == "OK"),
        docs=len(last.docs),
        paged_pages=sum(r.pages_out for r in last.docs if r.doc.page_sized),
        paged_size=sum(r.size for r in last.docs if r.doc.page_sized),
    )


def print_corpus(docs: Sequence[CorpusDocument], notes: Sequence[str]) -> None:
    print("## Corpus (real-world PDFs, fetched from Debian and PyPI; cached, not committed)\n")
    print("| kind | source | file | pages | first page, mm | kB |")
    print("|---|---|---|---:|---|---:|")
    for d in docs:
        print(
            f"| {d.kind} | {d.origin} | {d.member} | {d.pages} | "
            f"{d.width_mm:.0f}x{d.height_mm:.0f} | {d.size / 1000:.0f} |"
        )
    for kind in KINDS:
        sel = [d for d in docs if d.kind == kind]
        print(f"\n{KIND_TITLE[kind]}: {sum(d.pages for d in sel)} pages in {len(sel)} PDFs", end="")
    print("\n")
    for note in notes:
        print(f"note: {note}")


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x == x else "n/a"  # NaN when a side produced nothing


def print_tables(summaries: dict[tuple[str, Kind], Summary], tools: Sequence[str]) -> list[str]:
    """Print one table per kind and the target verdicts; returns the verdict lines."""
    verdicts: list[str] = []
    for kind in KINDS:
        rows = [summaries[(t, kind)] for t in tools if (t, kind) in summaries]
        if not rows:
            continue
        print(f"## {KIND_TITLE[kind]} ({rows[0].pages_in} pages, {rows[0].docs} PDFs)\n")
        print(
            "| tool | pages/s | kB/page | kB/page, A4/Letter PDFs only | tiffcheck OK (files) "
            "| tiffcheck OK (pages) | pages out | failed PDFs | CPU ms/page (median) "
            "| wall s (best; all runs) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for s in rows:
            check_files = f"{s.check_ok_docs}/{s.docs}" if s.checked else "n/a"
            check_pages = f"{s.check_ok_pages}/{s.pages_in}" if s.checked else "n/a"
            walls = ", ".join(f"{w:.2f}" for w in s.walls)
            print(
                f"| {s.tool} | {s.pages_per_s:.1f} | {s.kb_per_page:.1f} | "
                f"{s.paged_kb_per_page:.1f} ({s.paged_pages} p) | {check_files} | "
                f"{check_pages} | {s.pages_out}/{s.pages_in} | {s.failed_docs} | "
                f"{s.cpu_ms_per_page:.1f} | {s.wall:.2f} ({walls}) |"
            )
        fb = summaries.get((FAXBRIDGE, kind))
        if fb is None:
            print()
            continue
        for gs_tool in (GS, GS_BLACKTEXT):
            g = summaries.get((gs_tool, kind))
            if g is None:
                continue
            speed = fb.pages_per_s / g.pages_per_s if g.pages_per_s else float("nan")
            size = fb.kb_per_page / g.kb_per_page if g.kb_per_page else float("nan")
            paged = (
                fb.paged_kb_per_page / g.paged_kb_per_page if g.paged_kb_per_page else float("nan")
            )
            cpu = fb.cpu_ms_per_page / g.cpu_ms_per_page if g.cpu_ms_per_page else float("nan")
            print(
                f"| faxbridge / {gs_tool} | {fmt_ratio(speed)} | {fmt_ratio(size)} | "
                f"{fmt_ratio(paged)} | | | | | {fmt_ratio(cpu)} | |"
            )
        print()
        gs_rows = [summaries[(t, kind)] for t in (GS, GS_BLACKTEXT) if (t, kind) in summaries]
        if not gs_rows:
            continue
        # Judged against the better Ghostscript variant on each measure: the stricter reading.
        best_speed = max(g.pages_per_s for g in gs_rows)
        best_size = min(g.kb_per_page for g in gs_rows)
        want = SPEED_TARGET[kind]
        speed = fb.pages_per_s / best_speed if best_speed else float("nan")
        size = fb.kb_per_page / best_size if best_size else float("nan")
        complete = fb.pages_out == fb.pages_in and fb.failed_docs == 0
        note = "" if complete else f" (faxbridge rendered only {fb.pages_out}/{fb.pages_in} pages)"
        verdicts.append(
            f"{KIND_SHORT[kind]} pages/s >= {want:.1f}x Ghostscript: {fmt_ratio(speed)} "
            f"({fb.pages_per_s:.1f} vs {best_speed:.1f} pages/s) -> "
            f"{'MET' if speed >= want and complete else 'MISSED'}{note}"
        )
        verdicts.append(
            f"{KIND_SHORT[kind]} kB/page <= Ghostscript's: {fmt_ratio(size)} "
            f"({fb.kb_per_page:.1f} vs {best_size:.1f} kB/page) -> "
            f"{'MET' if size <= 1.0 and complete else 'MISSED'}{note}"
        )
    if verdicts:
        print("## Targets (faxbridge against the better of the two Ghostscript runs)\n")
        for line in verdicts:
            print(f"- {line}")
        print()
    return verdicts


def write_details(path: Path, runs: dict[tuple[str, Kind], list[Run]]) -> None:
    """Per-document figures of the last repetition, for digging into one PDF."""
    lines = ["tool\tkind\tfile\tpages_in\tpages_out\tkB_per_page\ttiffcheck\terror"]
    for (tool, kind), reps in runs.items():
        for r in reps[-1].docs:
            kbpp = r.size / 1000 / r.pages_out if r.pages_out else 0.0
            lines.append(
                f"{tool}\t{kind}\t{r.doc.name}\t{r.doc.pages}\t{r.pages_out}\t{kbpp:.1f}\t"
                f"{r.tiffcheck}\t{r.error}"
            )
    path.write_text("\n".join(lines) + "\n")


def print_problems(runs: dict[tuple[str, Kind], list[Run]]) -> None:
    problems = [
        (tool, r)
        for (tool, _), reps in runs.items()
        for r in reps[-1].docs
        if r.error or (r.tiffcheck and r.tiffcheck != "OK") or r.pages_out != r.doc.pages
    ]
    if not problems:
        return
    print("## Documents with problems\n")
    for tool, r in problems:
        what = r.error or (r.tiffcheck if r.tiffcheck != "OK" else "")
        print(f"- {tool}: {r.doc.name}: {r.pages_out}/{r.doc.pages} pages; {what}")
    print()


def machine_line(gs: str) -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gs_version = subprocess.run([gs, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        import pypdfium2

        pdfium = str(getattr(pypdfium2, "V_PYPDFIUM2", None) or pypdfium2.version.PYPDFIUM_INFO)
    except (ImportError, AttributeError):  # only informative
        pdfium = "?"
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs", "--", "renderers"],
        capture_output=True, text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "renderers"],
        capture_output=True, text=True,
    ).stdout.strip()
    # The work tree is what gets measured, committed or not: say which it was.
    state = f"{rev or 'no commit'}{' + uncommitted changes' if dirty else ''}"
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}; "
        f"Ghostscript {gs_version}; pypdfium2 {pdfium}; renderers/ at {state}"
    )


# --- profiling ---------------------------------------------------------------------------


def _render_all(docs: Sequence[CorpusDocument], outdir: Path) -> tuple[int, float]:
    pages = 0
    started = time.perf_counter()
    for d in docs:
        try:
            pages += _faxbridge_render(str(d.path), str(outdir / f"{d.path.stem}.tif"))
        # Inline, nothing turns a converter's own error into a refusal (renderers.worker
        # does that out of line): any of them is this document's outcome, printed.
        except Exception as exc:  # noqa: BLE001 - printed as the document's outcome
            print(f"profile: {d.name}: {type(exc).__name__}: {exc}")
    return pages, time.perf_counter() - started


@contextlib.contextmanager
def _renderer_inline() -> Iterator[None]:
    """Run the renderer's isolated jobs in this process, so that cProfile sees them.

    render_fax hands each document to a fresh worker process (renderers.worker); a
    profiler in this process would only see it waiting. Swapping the call for a direct
    one changes nothing the job computes; the difference in time is the isolation's cost.
    """
    import renderers.render as render_module

    isolated = render_module.run_isolated
    render_module.run_isolated = lambda function, argument, **_: function(argument)
    try:
        yield
    finally:
        render_module.run_isolated = isolated


@contextlib.contextmanager
def _stderr_to(log: Path) -> Iterator[None]:
    """Point file descriptor 2 at `log` (render children inherit it), then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def profile_faxbridge(docs: Sequence[CorpusDocument], outdir: Path, top: int) -> None:
    """Render each kind in this one process and print where faxbridge's time goes.

    Three sequential passes per kind: as shipped (a worker process per document),
    inline without profiler (the isolation's cost is the difference), inline under
    cProfile (the table, sorted by own time).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        sel = [d for d in docs if d.kind == kind]
        with _stderr_to(outdir / "faxbridge-stderr.log"):
            pages, isolated = _render_all(sel, outdir)
            with _renderer_inline():
                _, inline = _render_all(sel, outdir)
                prof = cProfile.Profile()
                prof.enable()
                _, profiled = _render_all(sel, outdir)
                prof.disable()
        dump = outdir / f"faxbridge-{kind}.prof"
        prof.dump_stats(str(dump))
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
        print(f"## Profile: faxbridge, {KIND_TITLE[kind].lower()}, one process, {pages} pages\n")
        print(f"- as shipped (worker process per document): {isolated:.2f} s, "
              f"{isolated * 1000 / max(pages, 1):.1f} ms/page")
        print(f"- inline (no worker processes): {inline:.2f} s, "
              f"{inline * 1000 / max(pages, 1):.1f} ms/page; isolation costs "
              f"{(isolated - inline) * 1000 / max(len(sel), 1):.0f} ms per document")
        print(f"- inline under cProfile: {profiled:.2f} s; saved to {dump}\n")
        print("```")
        # pstats' header lines are noise here; keep the table.
        text = buf.getvalue()
        print(text[text.find("   ncalls"):].rstrip() if "   ncalls" in text else text.strip())
        print("```\n")


# --- main --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/render/run", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--jobs", type=int, default=2,
                    help="documents rendered at once per tool (default 2)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed runs per tool and kind; the fastest counts (default 5)")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-corpus",
                    help="corpus cache folder")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench-render",
                    help="where the TIFFs and details go")
    ap.add_argument("--tools", default=",".join(TOOLS),
                    help=f"comma-separated subset of: {', '.join(TOOLS)}")
    ap.add_argument("--profile", action="store_true",
                    help="also profile faxbridge in-process with cProfile")
    ap.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    ap.add_argument("--corpus-only", action="store_true",
                    help="fetch and list the corpus, render nothing")
    args = ap.parse_args(argv)

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"unknown tools: {', '.join(sorted(unknown))}")

    print("# bench/render: faxbridge against Ghostscript with HylaFAX's flags\n")
    notes: list[str] = []
    try:
        docs = ensure_corpus(args.cache, notes)
    except CorpusError as exc:
        print(f"bench/render: cannot build the corpus: {exc}", file=sys.stderr)
        return 2
    print_corpus(docs, notes)
    if args.corpus_only:
        return 0

    gs = shutil.which("gs")
    if gs is None and (GS in tools or GS_BLACKTEXT in tools):
        print("bench/render: Ghostscript (gs) is missing: run `bash scripts/setup`", file=sys.stderr)
        return 2
    print(machine_line(gs or "gs"))
    print(f"jobs: {args.jobs} documents at a time per tool; "
          f"{args.repeat} timed runs, the fastest counts "
          "(CPU time: the median); "
          "documents handed out largest first\n")

    pool: cf.ProcessPoolExecutor | None = None
    if FAXBRIDGE in tools:
        try:
            from renderers import render_fax  # noqa: F401

            pool = faxbridge_pool(args.jobs, args.out / "faxbridge-stderr.log")
        except (ImportError, OSError, cf.BrokenExecutor) as exc:
            print(f"faxbridge: renderer not usable ({type(exc).__name__}: {exc}); "
                  "only Ghostscript runs\n")
            tools.remove(FAXBRIDGE)

    # Largest documents first, so the last one to finish is a short one (both tools alike).
    by_kind = {k: sorted((d for d in docs if d.kind == k), key=lambda d: -d.pages) for k in KINDS}
    runners: dict[
        str, Callable[[Sequence[CorpusDocument], Path], tuple[float, float, list[DocResult]]]
    ] = {}
    if pool is not None:
        runners[FAXBRIDGE] = lambda ds, out: run_faxbridge(pool, ds, out)
    if gs is not None:
        runners[GS] = lambda ds, out: run_gs(gs, GS_HYLAFAX, ds, out, args.jobs)
        blacktext = [*GS_HYLAFAX, "-dBlackText"]
        runners[GS_BLACKTEXT] = lambda ds, out: run_gs(gs, blacktext, ds, out, args.jobs)
    tools = [t for t in tools if t in runners]

    # Warm-up, untimed: page cache for the PDFs and fonts, lazy initialisation in workers.
    smallest = min(docs, key=lambda d: d.pages)
    for tool in tools:
        runners[tool]([smallest], args.out / "warmup" / tool.replace(" ", ""))

    runs: dict[tuple[str, Kind], list[Run]] = {}
    load_before = f"{os.getloadavg()[0]:.2f}"
    try:
        for rep in range(args.repeat):
            for kind in KINDS:
                # Tools alternate within each repetition, so drift hits all of them alike.
                for tool in tools:
                    outdir = args.out / tool.replace(" ", "") / kind
                    wall, cpu, results = runners[tool](by_kind[kind], outdir)
                    runs.setdefault((tool, kind), []).append(Run(tool, kind, wall, cpu, results))
                    print(
                        f"run {rep + 1}/{args.repeat}: {tool:15} {kind:4}: {wall:6.2f} s wall, "
                        f"{cpu:6.2f} s CPU",
                        flush=True,
                    )
    finally:
        if pool is not None:
            pool.shutdown()
    # Other work on the machine skews wall-clock figures; the load average shows it.
    print(f"load average before: {load_before}; after: {os.getloadavg()[0]:.2f} "
          "(1-min; about 0 means nothing else was running)\n")

    tiffcheck = find_tiffcheck()
    if tiffcheck is None:
        print("tiffcheck: not found (HylaFAX's; `bash scripts/setup` installs it into .tools/bin)\n")
    else:
        for reps in runs.values():
            run_tiffcheck(tiffcheck, reps[-1].docs)
        print(f"tiffcheck: {tiffcheck} {' '.join(TIFFCHECK_ARGS)} on every output file\n")

    summaries = {key: summarize(reps, tiffcheck is not None) for key, reps in runs.items()}
    print_tables(summaries, tools)
    print_problems(runs)
    details = args.out / "per-document.tsv"
    write_details(details, runs)
    (args.out / "summary.json").write_text(
        json.dumps(
            [
                {**{k: v for k, v in dataclasses.asdict(s).items()}, "pages_per_s": s.pages_per_s,
                 "kb_per_page": s.kb_per_page}
                for s in summaries.values()
            ],
            indent=1,
        )
    )
    print(f"per-document figures: {details}; TIFFs under {args.out}\n")

    if args.profile and FAXBRIDGE in tools:
        profile_faxbridge(docs, args.out / "profile", args.profile_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
