"""A real T.30 fax call inside one process: spandsp (libspandsp2 0.0.6) through ctypes.

Where it sits: the virtual line (`bridge.faxline.virtual`) places every call through
`run_call`, in a worker thread: transmit queue -> fax line -> *this* -> result, and for
calls to the service's own numbers, fax line in -> inbound pipeline. Nothing here knows
about jobs, accounts or asyncio.

How a call works: two spandsp fax states, one calling and one answering, each run a full
T.30 engine with its modems (V.21 for control, V.27ter/V.29/V.17 for pages). They are
joined back to back: every 20 ms block (160 samples of 8 kHz audio) one side's `fax_tx`
output is the other side's `fax_rx` input, both ways. Negotiation (DIS/DCS, training,
ECM, T.4/T.6) and page transfer are genuine, so line time (samples exchanged / 8000)
is what the call would take on a telephone line. Unpaced it runs ~1000x real time.

The library is loaded lazily once (functools.cache) and needs no struct sizes:
`fax_init(NULL, ...)` allocates each state, `fax_free` releases it. ctypes drops the GIL
during each foreign call, so several calls can run in parallel threads.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import random
import threading
import time
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from pathlib import Path

log = logging.getLogger("bridge.faxline.spandsp")

SAMPLE_RATE = 8000
BLOCK_SAMPLES = 160  # 20 ms, the block size spandsp's own test harnesses use
MAX_IDENT_LEN = 20  # T30_MAX_IDENT_LEN: TSI/CSI are at most 20 characters

# After the calling side hangs up, give the answering side this much line time to read
# the DCN and close its file before it is told the call is over.
_DRAIN_SECONDS = 10.0
# How far a realtime call may run ahead of the wall clock before it waits.
_PACE_SLACK_SECONDS = 0.05


class Compression(IntFlag):
    """Page codings a T.30 state may offer (spandsp's T30_SUPPORT_*_COMPRESSION bits)."""

    T4_1D = 0x02
    T4_2D = 0x04
    T6 = 0x08


ALL_COMPRESSIONS = Compression.T4_1D | Compression.T4_2D | Compression.T6


class Modem(IntFlag):
    """High-speed modems a T.30 state may offer (T30_SUPPORT_V27TER and friends)."""

    V27TER = 0x01
    V29 = 0x02
    V17 = 0x04


ALL_MODEMS = Modem.V27TER | Modem.V29 | Modem.V17


class Completion(IntEnum):
    """The T.30 phase E completion codes this package acts on (spandsp's T30_ERR_* enum,
    values as compiled into libspandsp2 0.0.6). Any other code is passed through as an int."""

    OK = 0
    CEDTONE = 1
    T0_EXPIRED = 2
    T1_EXPIRED = 3
    CANNOT_TRAIN = 6
    INCOMPATIBLE = 8
    RX_INCAPABLE = 9
    NORESSUPPORT = 11
    NOSIZESUPPORT = 12
    TX_BADDCS = 14
    TX_PHBDEAD = 20
    TX_PHDDEAD = 21
    FILEERROR = 41
    NOPAGE = 42
    BADTIFF = 43
    BADPAGE = 44
    BADTAG = 45
    BADTIFFHDR = 46
    NOMEM = 47
    RETRYDCN = 48
    CALLDROPPED = 49


# Codes that mean our own document could not be read: a bug or a bad render, not a line fault.
DOCUMENT_ERRORS = frozenset({Completion.FILEERROR, Completion.NOPAGE, Completion.BADTIFF,
                             Completion.BADPAGE, Completion.BADTAG, Completion.BADTIFFHDR,
                             Completion.NOMEM})

_T4_COMPRESSION_ITU_T6 = 3  # t4_rx.h: the coding received pages are stored in
_T30_DCS = 0x82  # t30_fcf.h: digital command signal (X bit masked off)
# Noise bursts in the TCF's 1.5 s of zeros, timed from the end of training, in 20 ms
# blocks: 60 ms every 300 ms leaves no clean run longer than 0.3 s (in trials spandsp
# 0.0.6 failed a TCF whose longest clean run was 0.87 s and passed one of 1.27 s), and
# the last burst ends well before the TCF does, so the answerer hears the carrier stop.
_BURST_BLOCKS = 3
_BURST_STARTS_BLOCKS = (8, 23, 38, 53)


class SpandspUnavailable(RuntimeError):
    """libspandsp2 is not installed (scripts/setup installs it: scripts/apt/faxline.txt)."""


class _Stats(ctypes.Structure):
    # t30_stats_t as laid out in 0.0.6: fifteen ints.
    _fields_ = [(name, ctypes.c_int) for name in (
        "bit_rate", "error_correcting_mode", "pages_tx", "pages_rx", "pages_in_file",
        "x_resolution", "y_resolution", "width", "length", "image_size", "encoding",
        "bad_rows", "longest_bad_row_run", "error_correcting_mode_retries", "current_status")]


_PHASE_E = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_FRAME = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                          ctypes.POINTER(ctypes.c_uint8), ctypes.c_int)
_LOG_MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)
_SPAN_LOG_FLOW = 5
_SAMPLES = ctypes.c_int16 * BLOCK_SAMPLES


@functools.cache
def library() -> ctypes.CDLL:
    """Load libspandsp2 once and declare the signatures this module calls."""
    try:
        lib = ctypes.CDLL("libspandsp.so.2")
    except OSError as exc:
        raise SpandspUnavailable("libspandsp2 is not installed; run scripts/setup") from exc
    p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    signatures: dict[str, tuple[object, list[object]]] = {
        "fax_init": (p, [p, i]),
        "fax_free": (i, [p]),
        "fax_get_t30_state": (p, [p]),
        "fax_set_transmit_on_idle": (None, [p, i]),
        "fax_tx": (i, [p, ctypes.POINTER(ctypes.c_int16), i]),
        "fax_rx": (i, [p, ctypes.POINTER(ctypes.c_int16), i]),
        "t30_set_tx_ident": (i, [p, s]),
        "t30_get_rx_ident": (s, [p]),
        "t30_set_supported_modems": (i, [p, i]),
        "t30_set_supported_compressions": (i, [p, i]),
        "t30_set_ecm_capability": (i, [p, i]),
        "t30_set_rx_encoding": (i, [p, i]),
        "t30_set_tx_file": (None, [p, s, i, i]),
        "t30_set_rx_file": (None, [p, s, i]),
        "t30_set_phase_e_handler": (None, [p, _PHASE_E, p]),
        "t30_set_real_time_frame_handler": (None, [p, _FRAME, p]),
        "t30_get_transfer_statistics": (None, [p, ctypes.POINTER(_Stats)]),
        "t30_terminate": (None, [p]),
        "t30_completion_code_to_str": (s, [i]),
        "t30_get_logging_state": (p, [p]),
        "span_log_set_level": (i, [p, i]),
        "span_log_set_message_handler": (None, [p, _LOG_MESSAGE]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def completion_text(code: int) -> str:
    """spandsp's own short description of a phase E completion code."""
    text = library().t30_completion_code_to_str(code)
    return text.decode("ascii", "replace") if text else f"code {code}"


@dataclass(frozen=True)
class CallStats:
    """What happened on one call, from both ends."""

    completion: int  # phase E code at the calling side (Completion.OK when all went well)
    answerer_completion: int  # phase E code at the answering side
    pages_sent: int  # pages the caller sent and the answerer confirmed (MCF)
    pages_received: int  # pages the answerer stored in rx_tiff
    pages_in_file: int  # pages in tx_tiff as the caller counted them (-1 if unknown)
    line_seconds: float  # from off-hook to the caller's hang-up: samples / 8000
    bit_rate: int  # the last negotiated modem speed, bits/s (0 if none was agreed)
    ecm: bool  # error correcting mode was in use
    compression: Compression | None  # the coding used on the line, None if no page went
    caller_saw_ident: str  # the answerer's CSI as the caller received it
    answerer_saw_ident: str  # the caller's TSI as the answerer received it
    answerer_hung_up: bool  # the answering side was made to hang up (hangup_after_pages)

    @property
    def completion_text(self) -> str:
        return completion_text(self.completion)

    @property
    def ok(self) -> bool:
        return self.completion == Completion.OK and self.answerer_completion == Completion.OK


# spandsp's stats.encoding holds T4_COMPRESSION_* values, not the T30_SUPPORT_* bits.
_ENCODING_TO_COMPRESSION = {1: Compression.T4_1D, 2: Compression.T4_2D, 3: Compression.T6}


class _Side:
    """One fax machine: a spandsp fax state with its phase E callback kept alive."""

    def __init__(self, lib: ctypes.CDLL, *, calling: bool, ident: str, ecm: bool,
                 compressions: Compression, modems: Modem) -> None:
        self.lib = lib
        self.completion: int | None = None
        self.state = lib.fax_init(None, 1 if calling else 0)
        if not self.state:
            raise MemoryError("fax_init failed")
        self.t30 = lib.fax_get_t30_state(self.state)
        # The callback object must outlive the call: ctypes frees the C thunk with it.
        self._on_phase_e = _PHASE_E(self._phase_e)
        lib.fax_set_transmit_on_idle(self.state, 1)
        lib.t30_set_tx_ident(self.t30, ident.encode("ascii", "replace"))
        lib.t30_set_supported_modems(self.t30, int(modems))
        lib.t30_set_supported_compressions(self.t30, int(compressions))
        lib.t30_set_ecm_capability(self.t30, 1 if ecm else 0)
        lib.t30_set_phase_e_handler(self.t30, self._on_phase_e, None)
        self.tx_buffer = _SAMPLES()

    def _phase_e(self, _t30: int | None, _user: int | None, code: int) -> None:
        self.completion = code

    @property
    def done(self) -> bool:
        return self.completion is not None

    def stats(self) -> _Stats:
        stats = _Stats()
        self.lib.t30_get_transfer_statistics(self.t30, ctypes.byref(stats))
        return stats

    def remote_ident(self) -> str:
        raw = self.lib.t30_get_rx_ident(self.t30)
        return raw.decode("ascii", "replace").strip() if raw else ""

    def transmit(self) -> ctypes.Array[ctypes.c_int16]:
        """Fill and return this side's outgoing block (always full: transmit_on_idle)."""
        self.lib.fax_tx(self.state, self.tx_buffer, BLOCK_SAMPLES)
        return self.tx_buffer

    def receive(self, block: ctypes.Array[ctypes.c_int16]) -> None:
        self.lib.fax_rx(self.state, block, BLOCK_SAMPLES)

    def terminate(self) -> None:
        """Tell T.30 the line is gone (loop current lost); fires phase E if still open."""
        self.lib.t30_terminate(self.t30)

    def free(self) -> None:
        if self.state:
            self.lib.fax_free(self.state)
            self.state = None


class _NoisyLine:
    """A line that crackles whenever the caller sends its training check.

    After each DCS the caller trains its high-speed modem and sends TCF: 1.5 s of zeros
    which the answerer must receive with a long enough unbroken run of zeros before it
    replies CFR. This line adds short bursts of white noise to the caller's audio during
    the TCF zeros only; control frames (V.21) and the modem training stay clean. So T.30
    itself judges the check bad and answers FTT, the caller steps down V.17 -> V.29 ->
    V.27ter and gives up with "cannot train": a genuine training failure.

    Timing comes from the answering machine itself: the DCS from its frame handler, and
    the moment its modem has trained from its log ("Training succeeded"). Noise over the
    whole call does not work: a receiver that never hears the carrier stop never replies,
    and the call ends in time-outs; noise over the training makes spandsp 0.0.6 wait
    silently instead of answering FTT."""

    _TRAINED = b"Non-ECM signal status is Training succeeded"

    def __init__(self, rms: float, seed: int = 0) -> None:
        rng = random.Random(seed)
        # A few seconds of precomputed noise, cycled: cheap per block.
        self._noise = [int(rng.gauss(0.0, rms)) for _ in range(SAMPLE_RATE * 3 + 7)]
        self._at = 0
        self._out = _SAMPLES()
        self._armed = False  # a DCS came in: the next training is the TCF's
        self._blocks = 0  # blocks seen so far
        self._bursts: list[tuple[int, int]] = []  # (first, last) block of each burst

    def on_frame(self, _t30: int | None, _user: int | None, incoming: int,
                 msg: ctypes._Pointer[ctypes.c_uint8], length: int) -> None:
        # HDLC frame: address 0xFF, control, then the facsimile control field whose low
        # bit is the "X" bit (which side sent it), masked off here.
        if incoming and length >= 3 and msg[2] & 0xFE == _T30_DCS:
            self._armed = True

    def on_log(self, _level: int, text: bytes | None) -> None:
        if self._armed and text and self._TRAINED in text:
            self._armed = False
            now = self._blocks
            self._bursts = [(now + first, now + first + _BURST_BLOCKS - 1)
                            for first in _BURST_STARTS_BLOCKS]

    def corrupt(self, block: ctypes.Array[ctypes.c_int16]) -> ctypes.Array[ctypes.c_int16]:
        self._blocks += 1
        if not any(first <= self._blocks <= last for first, last in self._bursts):
            return block
        noise, at, out = self._noise, self._at, self._out
        for k in range(BLOCK_SAMPLES):
            value = block[k] + noise[(at + k) % len(noise)]
            out[k] = -32768 if value < -32768 else 32767 if value > 32767 else value
        self._at = (at + BLOCK_SAMPLES) % len(noise)
        return out


def run_call(tx_tiff: Path, rx_tiff: Path, *, caller_ident: str, answerer_ident: str,
             ecm: bool = True, compressions: Compression = ALL_COMPRESSIONS,
             answerer_compressions: Compression | None = None, modems: Modem = ALL_MODEMS,
             hangup_after_pages: int | None = None, fail_training: bool = False,
             realtime: bool = False, cancel: threading.Event | None = None,
             max_line_seconds: float = 4 * 3600.0, noise_rms: float = 6000.0) -> CallStats:
    """Run one whole fax call synchronously (call it from a worker thread).

    The calling side sends every page of `tx_tiff`; the answering side stores what it
    receives in `rx_tiff` (T.6 coded; the file may be absent or empty if no page arrived).

    hangup_after_pages: the answering side hangs up once it has received and confirmed
        that many pages; the caller finds out the way a fax machine does (no answer to
        its next command) and ends with a T.30 error.
    fail_training: the line from caller to answerer is noisy (see _NoisyLine), so training
        fails at every speed.
    realtime: pace the call at line speed (one second of line time per wall second).
    cancel: when set, both sides are hung up at once (the service is shutting down).
    """
    if hangup_after_pages is not None and hangup_after_pages < 1:
        raise ValueError("hangup_after_pages counts pages received: at least 1")
    for ident in (caller_ident, answerer_ident):
        if len(ident) > MAX_IDENT_LEN:
            raise ValueError(f"T.30 station ids are at most {MAX_IDENT_LEN} characters: {ident!r}")
    lib = library()
    caller = _Side(lib, calling=True, ident=caller_ident, ecm=ecm, compressions=compressions,
                   modems=modems)
    answerer = None
    try:
        answerer = _Side(lib, calling=False, ident=answerer_ident, ecm=ecm,
                         compressions=answerer_compressions or compressions, modems=modems)
        lib.t30_set_tx_file(caller.t30, str(tx_tiff).encode(), -1, -1)
        lib.t30_set_rx_file(answerer.t30, str(rx_tiff).encode(), -1)
        # Store received pages as T.6: the densest coding, and what the inbound pipeline
        # embeds in PDF without re-encoding.
        lib.t30_set_rx_encoding(answerer.t30, _T4_COMPRESSION_ITU_T6)
        noise = None
        if fail_training:
            noise = _NoisyLine(noise_rms)
            # Both callbacks stay referenced (locals) until the call returns; each is a
            # thunk of its own, so concurrent calls never see each other's messages.
            frame_handler = _FRAME(noise.on_frame)
            log_handler = _LOG_MESSAGE(noise.on_log)
            lib.t30_set_real_time_frame_handler(answerer.t30, frame_handler, None)
            logging_state = lib.t30_get_logging_state(answerer.t30)
            lib.span_log_set_message_handler(logging_state, log_handler)
            lib.span_log_set_level(logging_state, _SPAN_LOG_FLOW)
        return _exchange(caller, answerer, hangup_after_pages=hangup_after_pages, noise=noise,
                         realtime=realtime, cancel=cancel, max_line_seconds=max_line_seconds)
    finally:
        # Freeing the answering state closes its TIFF, so rx_tiff is complete on return.
        caller.free()
        if answerer is not None:
            answerer.free()


def _exchange(caller: _Side, answerer: _Side, *, hangup_after_pages: int | None,
              noise: _NoisyLine | None, realtime: bool, cancel: threading.Event | None,
              max_line_seconds: float) -> CallStats:
    """Pass audio both ways until both sides reach phase E; return the call's figures."""
    silence = _SAMPLES()
    blocks = 0
    caller_blocks: int | None = None  # blocks exchanged when the caller hung up
    answerer_on_line = True
    hung_up = False
    max_blocks = int(max_line_seconds * SAMPLE_RATE / BLOCK_SAMPLES)
    drain_blocks = int(_DRAIN_SECONDS * SAMPLE_RATE / BLOCK_SAMPLES)
    started = time.monotonic()
    while not (caller.done and answerer.done):
        if cancel is not None and cancel.is_set():
            caller.terminate()
            answerer.terminate()
            break
        from_caller = caller.transmit() if not caller.done else silence
        from_answerer = answerer.transmit() if answerer_on_line and not answerer.done else silence
        if answerer_on_line:
            answerer.receive(noise.corrupt(from_caller) if noise is not None else from_caller)
        caller.receive(from_answerer)
        blocks += 1

        if (hangup_after_pages is not None and answerer_on_line
                and answerer.stats().pages_rx >= hangup_after_pages
                and caller.stats().pages_tx >= hangup_after_pages):
            # The far machine puts the phone down: it stops sending and listening, and
            # closes what it has received. The caller is left talking to silence.
            answerer_on_line = False
            hung_up = True
            answerer.terminate()
            log.debug("answering side hung up after %d page(s)", hangup_after_pages)

        if caller.done and caller_blocks is None:
            caller_blocks = blocks
        if caller_blocks is not None and not answerer.done and blocks - caller_blocks > drain_blocks:
            answerer.terminate()
        if blocks >= max_blocks:
            # A runaway call (should not happen: T.30 timers end every stuck call).
            log.warning("call exceeded %.0f s of line time; hanging up", max_line_seconds)
            caller.terminate()
            answerer.terminate()
        if realtime:
            ahead = blocks * BLOCK_SAMPLES / SAMPLE_RATE - (time.monotonic() - started)
            if ahead > _PACE_SLACK_SECONDS:
                # Worker thread, not the event loop: a blocking wait is right here, and
                # waiting on `cancel` lets a shutdown interrupt it.
                if cancel is not None:
                    cancel.wait(ahead)
                else:
                    time.sleep(ahead)

    caller_stats, answerer_stats = caller.stats(), answerer.stats()
    line_blocks = caller_blocks if caller_blocks is not None else blocks
    return CallStats(
        completion=caller.completion if caller.completion is not None else Completion.CALLDROPPED,
        answerer_completion=(answerer.completion if answerer.completion is not None
                             else Completion.CALLDROPPED),
        pages_sent=caller_stats.pages_tx,
        pages_received=answerer_stats.pages_rx,
        pages_in_file=caller_stats.pages_in_file,
        line_seconds=line_blocks * BLOCK_SAMPLES / SAMPLE_RATE,
        # Before any page the statistics still hold the initial 14400: report no speed.
        bit_rate=caller_stats.bit_rate if caller_stats.pages_tx else 0,
        ecm=bool(caller_stats.error_correcting_mode),
        compression=(_ENCODING_TO_COMPRESSION.get(caller_stats.encoding)
                     if caller_stats.pages_tx else None),
        caller_saw_ident=caller.remote_ident(),
        answerer_saw_ident=answerer.remote_ident(),
        answerer_hung_up=hung_up,
    )
