"""The virtual line as the transmit runner and the inbound pipeline see it.

Calls that answer are real spandsp T.30 calls in worker threads; the dial plan, channel
limit, storage and the hand-over of inbound faxes are the line's own, tested through
the `FaxLine` interface only.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.faxline import (
    CallOutcome,
    CallRequest,
    CallResult,
    FaxLine,
    InboundFax,
    InboundHandler,
    LineClosed,
    spandsp,
)
from bridge.faxline.base import FaxDocumentError
from bridge.faxline.virtual import VirtualLine, VirtualLineSettings
from tests.faxline.conftest import read_pages, same_pages

SERVICE_NUMBER = "+15557770001"  # held by a faxbridge account in these tests
REMOTE = "+15550100042"  # inside the default remote machine prefix +1555010
BUSY, NO_ANSWER, HANGS_UP, NOISY = "+15550200001", "+15550200002", "+15550200003", "+15550200004"


class Inbox:
    """Stands in for the inbound queue: records each InboundFax handed over."""

    def __init__(self) -> None:
        self.faxes: list[InboundFax] = []

    async def __call__(self, fax: InboundFax) -> None:
        self.faxes.append(fax)


async def is_service_number(number: str) -> bool:
    return number == SERVICE_NUMBER


def make_settings(tmp_path: Path, **overrides: object) -> VirtualLineSettings:
    values: dict[str, object] = {
        "remote_dir": tmp_path / "remote",
        "inbound_dir": tmp_path / "inbound",
        "hangup_after_page": {HANGS_UP: 2},
    }
    values.update(overrides)
    return VirtualLineSettings(**values)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def line(tmp_path: Path, inbox: Inbox) -> AsyncIterator[VirtualLine]:
    running = VirtualLine(make_settings(tmp_path), is_service_number)
    await running.start(inbox)
    try:
        yield running
    finally:
        await running.close()


def request(to: str, tiff: Path, job: str = "J1") -> CallRequest:
    return CallRequest(to_number=to, tiff_path=tiff, caller_number="+15551230000",
                       station_id="+1 555 123 0000", job_id=job)


def stored_faxes(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tif")) if folder.exists() else []


def test_virtual_line_is_a_fax_line(tmp_path: Path) -> None:
    assert isinstance(VirtualLine(make_settings(tmp_path), is_service_number), FaxLine)


async def test_remote_machine_receives_every_page_and_keeps_them(
        line: VirtualLine, fax_docs: dict[str, Path], tmp_path: Path) -> None:
    result = await line.place_call(request(REMOTE, fax_docs["g4-3"]))

    assert result.outcome is CallOutcome.COMPLETED and result.answered
    assert result.pages_sent == 3
    assert result.ecm and result.bit_rate == 14400
    assert result.remote_station_id == REMOTE  # machines answer with their own number
    assert result.detail == "The fax was delivered: 3 pages."
    [kept] = stored_faxes(tmp_path / "remote" / REMOTE.lstrip("+"))
    assert same_pages(fax_docs["g4-3"], kept)  # G4 with ECM: pixel-identical


async def test_busy_number_is_busy_without_a_call(line: VirtualLine, fax_docs: dict[str, Path],
                                                  tmp_path: Path) -> None:
    result = await line.place_call(request(BUSY, fax_docs["g4-1"]))

    assert result.outcome is CallOutcome.BUSY and not result.answered
    assert result.line_seconds == 0 and result.pages_sent == 0
    assert result.detail == "The line was busy."
    assert stored_faxes(tmp_path / "remote") == []


async def test_unanswered_number_rings_out(line: VirtualLine, fax_docs: dict[str, Path]) -> None:
    result = await line.place_call(request(NO_ANSWER, fax_docs["g4-1"]))

    assert result.outcome is CallOutcome.NO_ANSWER and not result.answered
    assert result.line_seconds == 0


async def test_number_outside_the_dial_plan_is_not_in_service(
        line: VirtualLine, fax_docs: dict[str, Path]) -> None:
    result = await line.place_call(request("+442079460000", fax_docs["g4-1"]))

    assert result.outcome is CallOutcome.NOT_IN_SERVICE and not result.answered
    assert result.detail == "The number is not in service."


async def test_machine_that_hangs_up_after_page_two_drops_the_call_with_two_pages(
        line: VirtualLine, fax_docs: dict[str, Path], tmp_path: Path) -> None:
    result = await line.place_call(request(HANGS_UP, fax_docs["g4-3"]))

    assert result.outcome is CallOutcome.DROPPED
    assert result.answered  # R-USE-3: a transmission took place, so it is billable
    assert result.pages_sent == 2
    assert result.line_seconds > 0
    assert result.detail == "The call was cut off after 2 of 3 pages."
    [kept] = stored_faxes(tmp_path / "remote")
    assert len(read_pages(kept)) == 2


async def test_noisy_line_fails_training_and_sends_nothing(
        line: VirtualLine, fax_docs: dict[str, Path], tmp_path: Path) -> None:
    result = await line.place_call(request(NOISY, fax_docs["g4-1"]))

    assert result.outcome is CallOutcome.TRAINING_FAILED
    assert result.answered  # a fax machine answered and the line was held
    assert result.pages_sent == 0 and result.bit_rate == 0
    assert result.line_seconds > 0
    assert stored_faxes(tmp_path / "remote") == []  # nothing received, nothing kept


async def test_call_to_a_service_number_arrives_as_an_inbound_fax(
        line: VirtualLine, inbox: Inbox, fax_docs: dict[str, Path], tmp_path: Path) -> None:
    result = await line.place_call(request(SERVICE_NUMBER, fax_docs["g4-3"], job="J7"))

    assert result.outcome is CallOutcome.COMPLETED and result.pages_sent == 3
    [fax] = inbox.faxes
    assert fax.to_number == SERVICE_NUMBER
    assert fax.caller_number == "+15551230000"
    assert fax.remote_station_id == "+1 555 123 0000"  # the sender's TSI, as received
    assert fax.pages == 3 and fax.line_seconds == result.line_seconds
    assert fax.received_at.tzinfo is not None
    assert fax.tiff_path.parent == tmp_path / "inbound"
    assert same_pages(fax_docs["g4-3"], fax.tiff_path)
    # libtiff decodes every strip of it, as the inbound pipeline's tools will.
    check = subprocess.run(["tiffinfo", "-D", str(fax.tiff_path)], capture_output=True, text=True)
    assert check.returncode == 0 and "error" not in check.stderr.lower(), check.stderr
    assert stored_faxes(tmp_path / "remote") == []


async def test_four_channels_carry_four_calls_at_once_and_a_fifth_waits(
        line: VirtualLine, fax_docs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real_run_call = spandsp.run_call
    lock = threading.Lock()
    active = peak = 0
    # The first four calls meet here before dialling: proof that four run at once.
    all_four_up = threading.Barrier(4, timeout=20)
    entered = 0

    def counting_run_call(*args: object, **kwargs: object) -> spandsp.CallStats:
        nonlocal active, peak, entered
        with lock:
            active += 1
            entered += 1
            peak = max(peak, active)
            first_four = entered <= 4
        try:
            if first_four:
                all_four_up.wait()
            return real_run_call(*args, **kwargs)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(spandsp, "run_call", counting_run_call)
    calls = [line.place_call(request(f"+155501000{n:02d}", fax_docs["g4-1"], job=f"J{n}"))
             for n in range(5)]
    results = await asyncio.wait_for(asyncio.gather(*calls), timeout=60)

    assert [r.outcome for r in results] == [CallOutcome.COMPLETED] * 5
    assert all(r.pages_sent == 1 for r in results)
    assert peak == 4  # the fifth got a channel only when one of the four hung up


async def test_close_hangs_up_a_call_in_progress(
        tmp_path: Path, inbox: Inbox, fax_docs: dict[str, Path]) -> None:
    line = VirtualLine(make_settings(tmp_path, realtime=True), is_service_number)
    await line.start(inbox)
    call = asyncio.create_task(line.place_call(request(REMOTE, fax_docs["g4-3"])))
    await asyncio.sleep(0.3)  # a realtime call is now a few hundred ms into phase A/B

    await asyncio.wait_for(line.close(), timeout=5)

    with pytest.raises(LineClosed):
        await call
    assert stored_faxes(tmp_path / "remote") == []


async def test_a_line_that_is_not_running_refuses_calls(
        tmp_path: Path, inbox: Inbox, fax_docs: dict[str, Path]) -> None:
    line = VirtualLine(make_settings(tmp_path), is_service_number)
    with pytest.raises(LineClosed):
        await line.place_call(request(REMOTE, fax_docs["g4-1"]))
    await line.start(inbox)
    await line.close()
    with pytest.raises(LineClosed):
        await line.place_call(request(REMOTE, fax_docs["g4-1"]))


async def test_missing_document_is_our_fault_not_the_far_ends(line: VirtualLine, tmp_path: Path) -> None:
    with pytest.raises(FaxDocumentError):
        await line.place_call(request(REMOTE, tmp_path / "never-rendered.tif"))


async def call_service_number(tmp_path: Path, tiff: Path, handler: InboundHandler, *,
                              retries: tuple[float, ...]) -> CallResult:
    """One call to the service number on a line of its own whose inbound pipeline is
    `handler`, offered a fax again after each of `retries`."""
    line = VirtualLine(make_settings(tmp_path, handover_retry_seconds=retries), is_service_number)
    await line.start(handler)
    try:
        return await line.place_call(request(SERVICE_NUMBER, tiff))
    finally:
        await line.close()


async def test_inbound_handler_failure_keeps_the_fax_and_the_call_completed(
        tmp_path: Path, fax_docs: dict[str, Path]) -> None:
    offered: list[InboundFax] = []

    async def broken_inbox(fax: InboundFax) -> None:
        offered.append(fax)
        raise RuntimeError("queue unavailable")

    result = await call_service_number(tmp_path, fax_docs["g4-1"], broken_inbox, retries=(0.01, 0.01))
    assert result.outcome is CallOutcome.COMPLETED
    assert len(offered) == 3  # once, then after each of the two pauses
    assert len(stored_faxes(tmp_path / "inbound")) == 1  # left for an operator


async def test_a_fax_the_pipeline_could_not_take_at_once_is_offered_again(
        tmp_path: Path, inbox: Inbox, fax_docs: dict[str, Path]) -> None:
    failures = ["database is locked"]

    async def busy_then_free_inbox(fax: InboundFax) -> None:
        if failures:
            raise OSError(failures.pop())
        await inbox(fax)

    result = await call_service_number(tmp_path, fax_docs["g4-1"], busy_then_free_inbox, retries=(0.01,))
    assert result.outcome is CallOutcome.COMPLETED
    [fax] = inbox.faxes  # handed over once, on the second offer
    assert same_pages(fax_docs["g4-1"], fax.tiff_path)


async def test_a_range_of_remote_machines_includes_both_ends(
        tmp_path: Path, inbox: Inbox, fax_docs: dict[str, Path]) -> None:
    line = VirtualLine(make_settings(tmp_path, remote_machines=("+15550300000-+15550300009",)),
                       is_service_number)
    await line.start(inbox)
    try:
        outcomes = [(await line.place_call(request(n, fax_docs["g4-1"]))).outcome
                    for n in ("+15550300000", "+15550300009", "+15550300010")]
    finally:
        await line.close()

    assert outcomes == [CallOutcome.COMPLETED, CallOutcome.COMPLETED, CallOutcome.NOT_IN_SERVICE]


@pytest.mark.parametrize("bad", [
    {"busy_numbers": ["5551234"]},
    {"remote_machines": ["+15560-+15559"]},  # reversed
    {"remote_machines": ["+1555-+15560"]},  # ends of different lengths
    {"remote_machines": ["1555010"]},  # a prefix without "+"
    {"hangup_after_page": {"+15550200003": 0}},
    {"station_id": "x" * 21},
    {"channel": 4},
])
def test_settings_refuse_what_the_line_cannot_honour(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VirtualLineSettings(**bad)


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        VirtualLineSettings().channels = 8  # type: ignore[misc]
