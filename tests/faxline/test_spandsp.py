"""The T.30 engine on its own: two spandsp fax machines joined back to back.

Every test here places a real fax call (V.21 negotiation, modem training, page transfer,
phase E) through libspandsp2; nothing is mocked. A missing library fails, not skips.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bridge.faxline.spandsp import Completion, Compression, Modem, library, run_call
from tests.faxline.conftest import read_pages, same_pages


def test_libspandsp2_is_installed() -> None:
    # scripts/setup installs it (scripts/apt/faxline.txt); a skip here would hide a broken CI.
    assert library().fax_init is not None


def test_g4_pages_arrive_pixel_identical_with_ecm(fax_docs: dict[str, Path], tmp_path: Path) -> None:
    received = tmp_path / "rx.tif"
    stats = run_call(fax_docs["g4-3"], received, caller_ident="+1 555 0100", answerer_ident="REMOTE")

    assert stats.ok, stats.completion_text
    assert stats.pages_sent == stats.pages_received == stats.pages_in_file == 3
    assert stats.ecm and stats.compression is Compression.T6
    assert stats.bit_rate == 14400  # a clean line trains V.17 at full speed
    assert same_pages(fax_docs["g4-3"], received)


def test_g3_without_ecm_delivers_every_page_in_one_dimensional_coding(
        fax_docs: dict[str, Path], tmp_path: Path) -> None:
    received = tmp_path / "rx.tif"
    stats = run_call(fax_docs["g3-1d-2"], received, caller_ident="A", answerer_ident="B",
                     ecm=False, compressions=Compression.T4_1D)

    assert stats.ok, stats.completion_text
    assert stats.pages_received == 2
    assert not stats.ecm and stats.compression is Compression.T4_1D
    # Without ECM a noisy line could damage rows; this line is clean, so nothing differs.
    assert same_pages(fax_docs["g3-1d-2"], received)


def test_station_ids_cross_the_line_both_ways(fax_docs: dict[str, Path], tmp_path: Path) -> None:
    stats = run_call(fax_docs["g4-1"], tmp_path / "rx.tif", caller_ident="+1 555 0100",
                     answerer_ident="+44 20 7946 0000")

    assert stats.caller_saw_ident == "+44 20 7946 0000"  # CSI
    assert stats.answerer_saw_ident == "+1 555 0100"  # TSI


def test_a_slow_modem_is_used_when_it_is_all_both_sides_have(
        fax_docs: dict[str, Path], tmp_path: Path) -> None:
    stats = run_call(fax_docs["g4-1"], tmp_path / "rx.tif", caller_ident="A", answerer_ident="B",
                     modems=Modem.V27TER)

    assert stats.ok and stats.bit_rate == 4800


def test_a_typical_page_takes_a_plausible_line_time(fax_docs: dict[str, Path], tmp_path: Path) -> None:
    stats = run_call(fax_docs["dense-1"], tmp_path / "rx.tif", caller_ident="A", answerer_ident="B")

    assert stats.ok
    # Line time is samples exchanged / 8000; a page of text takes 17-140 s on a real line.
    assert 17 <= stats.line_seconds <= 140


def test_answering_machine_that_hangs_up_after_a_page_leaves_that_page_received(
        fax_docs: dict[str, Path], tmp_path: Path) -> None:
    received = tmp_path / "rx.tif"
    stats = run_call(fax_docs["g4-3"], received, caller_ident="A", answerer_ident="B",
                     hangup_after_pages=1)

    assert stats.answerer_hung_up
    assert stats.completion != Completion.OK  # the caller noticed: its next page went unanswered
    assert stats.pages_sent == stats.pages_received == 1
    assert len(read_pages(received)) == 1


def test_noisy_line_fails_training_at_every_speed(fax_docs: dict[str, Path], tmp_path: Path) -> None:
    stats = run_call(fax_docs["g4-1"], tmp_path / "rx.tif", caller_ident="A", answerer_ident="B",
                     fail_training=True)

    # The caller's own T.30 verdict after stepping down through every modem.
    assert stats.completion == Completion.CANNOT_TRAIN, stats.completion_text
    assert stats.pages_sent == stats.pages_received == 0
    assert stats.bit_rate == 0
    assert stats.line_seconds > 10  # several DCS/TCF rounds took place on the line


def test_realtime_call_runs_at_line_speed_and_can_be_hung_up(
        fax_docs: dict[str, Path], tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.6, cancel.set)
    timer.start()
    started = time.monotonic()
    stats = run_call(fax_docs["g4-3"], tmp_path / "rx.tif", caller_ident="A", answerer_ident="B",
                     realtime=True, cancel=cancel)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert 0.3 <= stats.line_seconds <= elapsed + 0.2  # paced: line time ~ wall time
    assert stats.completion == Completion.CALLDROPPED


def test_station_ids_longer_than_twenty_characters_are_refused(fax_docs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        run_call(fax_docs["g4-1"], tmp_path / "rx.tif", caller_ident="x" * 21, answerer_ident="B")
