"""The pipeline kit (bridge.core.pipeline) and the plug contract (bridge.core.component):
steps are found by name in their flow's handlers package, pipelines named in config
are checked at start, and components are built in an order that meets their needs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import handlers.abuse
import handlers.inbound
import handlers.outbound
from bridge.abuse.pipeline import AbuseStep
from bridge.core.component import Component, MissingService, Provided, ServiceKey, build_order
from bridge.core.pipeline import RecordingStep, Step, build_pipeline, check_names, steps_in
from bridge.core.refusal import Refusal
from bridge.core.settings import SettingsError
from bridge.inbound.pipeline import InboundStep
from bridge.outbound.pipeline import IntakeStep
from bridge.settings import load_settings


def test_each_flow_finds_exactly_its_own_steps_by_name() -> None:
    assert sorted(steps_in(handlers.outbound, IntakeStep)) == ["authenticate", "meter", "parse", "render"]
    assert sorted(steps_in(handlers.inbound, InboundStep)) == ["decorate", "deliver", "store", "to-pdf"]
    assert sorted(steps_in(handlers.abuse, AbuseStep)) == ["act", "classify", "match"]


def test_the_default_pipelines_name_only_known_steps() -> None:
    s = load_settings(environ={})
    check_names("intake.pipeline", s.intake.pipeline, steps_in(handlers.outbound, IntakeStep))
    check_names("inbound.pipeline", s.inbound.pipeline, steps_in(handlers.inbound, InboundStep))
    check_names("abuse.pipeline", s.abuse.pipeline, steps_in(handlers.abuse, AbuseStep))


def test_a_misspelt_step_stops_start_up_with_the_known_names() -> None:
    with pytest.raises(SettingsError) as refused:
        check_names("intake.pipeline", ["authenticate", "rendr"], steps_in(handlers.outbound, IntakeStep))
    assert "unknown step(s) ['rendr']" in str(refused.value)
    assert "'render'" in str(refused.value)


def test_a_step_named_twice_in_a_pipeline_is_refused() -> None:
    with pytest.raises(SettingsError, match="named twice"):
        check_names("intake.pipeline", ["parse", "parse"], steps_in(handlers.outbound, IntakeStep))


def test_adding_a_step_is_one_file_in_the_flows_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "extra_steps"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "refuse_tests.py").write_text(textwrap.dedent('''
        from bridge.outbound.pipeline import IntakeStep, RejectSubmission

        class RefuseTests(IntakeStep):
            name = "refuse-tests"

            async def process(self, job):
                if job.subject.startswith("TEST"):
                    raise RejectSubmission("Submissions whose subject starts with TEST are not faxed.")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import extra_steps

    try:
        assert list(steps_in(extra_steps, IntakeStep)) == ["refuse-tests"]
        # Steps of another flow in the same package are not taken for this one's.
        assert steps_in(extra_steps, InboundStep) == {}
    finally:
        for name in [m for m in sys.modules if m.startswith("extra_steps")]:
            del sys.modules[name]


class _Job:
    def __init__(self, id: str) -> None:
        self.id = id
        self.seen: list[str] = []


class _Works(Step[_Job]):
    name = "works"

    def __init__(self, context: object) -> None:
        pass

    async def process(self, job: _Job) -> None:
        job.seen.append(self.name)


class _Writes(RecordingStep[_Job]):
    name = "writes"

    def __init__(self, context: object) -> None:
        pass

    async def process(self, job: _Job) -> None:
        job.seen.append(self.name)

    async def record(self, tx: Any, jobs: Sequence[_Job]) -> Mapping[str, Refusal]:
        return {}


def test_only_steps_that_declare_a_second_phase_are_recorders() -> None:
    pipeline = build_pipeline("test.pipeline", ["works", "writes"], {"works": _Works, "writes": _Writes}, None)
    assert pipeline.names == ("works", "writes")
    assert [step.name for step in pipeline.recorders] == ["writes"]


A: ServiceKey[int] = ServiceKey("a")
B: ServiceKey[int] = ServiceKey("b")
ROOT: ServiceKey[int] = ServiceKey("root")


class _NeedsB(Component):
    name = "needs-b"
    needs = (B, ROOT)


class _GivesB(Component):
    name = "gives-b"
    needs = (A,)
    provides = (B,)


class _GivesA(Component):
    name = "gives-a"
    provides = (A,)


def test_components_are_built_after_whatever_provides_what_they_need() -> None:
    order = build_order([_NeedsB, _GivesB, _GivesA], [ROOT])
    assert [c.name for c in order] == ["gives-a", "gives-b", "needs-b"]


def test_a_need_nobody_provides_stops_start_up_naming_it() -> None:
    with pytest.raises(MissingService, match="needs-b needs the root"):
        build_order([_NeedsB, _GivesB, _GivesA], [])


class _ForgetsB(_GivesB):
    name = "forgets-b"

    def __init__(self) -> None:  # built by hand here; the app passes services
        pass


def test_a_component_that_gives_less_than_it_declares_stops_start_up() -> None:
    with pytest.raises(ValueError, match="declares it provides \\['b'\\] but gives \\[\\]"):
        Provided().provide_from(_ForgetsB())
