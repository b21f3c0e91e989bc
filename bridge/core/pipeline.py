"""The pipeline kit: one Step contract for every flow, steps found by name, checked at start.

Where it sits: under the three pipelines of the product, which all use it the same way:

    intake   (bridge.outbound.pipeline)  authenticate, parse, render, meter
    inbound  (bridge.inbound.pipeline)   store, to-pdf, decorate, deliver
    abuse    (bridge.abuse.pipeline)     classify, match, act

A step is a small class in `handlers/<flow>/<step>.py` that derives from `Step[Job]`
for the job type of its flow, has a `name` (what config calls it) and one
`async process(job)`; its constructor takes the flow's context (what steps may use).
A pipeline is a tuple of step names in config (`intake.pipeline`, ...), checked when the
app starts: an unknown name stops start-up with a SettingsError naming the known ones.

Adding a step is one file plus one config line: `steps_in(package, base)` finds every
step class of the flow's handlers package by that package's modules, the way Mailman 3
finds its handlers, so no registry needs editing.

Two phases, declared, not guessed: a step that must write in the transaction that ends
a batch (the inbound flow commits a whole batch at once) also derives from
`RecordingStep[Job]` instead and implements `record(tx, jobs)`, returning the jobs it refuses.
`Pipeline.recorders` lists those steps, in order.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bridge.core.refusal import Refusal
from bridge.core.settings import SettingsError

J = TypeVar("J")
C = TypeVar("C")


class Step(ABC, Generic[J]):
    """One thing a pipeline does to its job; `name` is what config calls it."""

    name: ClassVar[str]

    @abstractmethod
    async def process(self, job: J) -> None:
        """Do the step's work on `job`, changing it in place. Raise the flow's Refusal
        to stop the job with a reason; any other exception parks the job for an
        operator. A step is safe to run again: a crash repeats the step it was in."""


class RecordingStep(Step[J]):
    """A step with a second phase: it also writes in the transaction that ends the batch."""

    @abstractmethod
    async def record(self, tx: AsyncSession, jobs: Sequence[J]) -> Mapping[str, Refusal]:
        """Write for `jobs` inside `tx`; return the refused ones by job id, with why."""


StepFactory = Callable[[C], Step[J]]


def steps_in(package: ModuleType, base: type[Step[Any]]) -> dict[str, StepFactory[Any, Any]]:
    """Every concrete subclass of `base` defined in the modules of `package`, by name.

    Two steps of one name are a programming error, raised at start.
    """
    found: dict[str, Any] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, base) or inspect.isabstract(cls):
                continue
            if cls.name in found and found[cls.name] is not cls:
                raise SettingsError(f"two steps are called {cls.name!r}: "
                                    f"{found[cls.name].__qualname__} and {cls.__qualname__}")
            found[cls.name] = cls
    return found


@dataclass(frozen=True)
class Pipeline(Generic[J]):
    """The steps of one pipeline, in the order config names them."""

    setting: str
    steps: tuple[Step[J], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    @property
    def recorders(self) -> tuple[RecordingStep[J], ...]:
        """The steps with a second phase, in pipeline order."""
        return tuple(step for step in self.steps if isinstance(step, RecordingStep))


def check_names(setting: str, names: Sequence[str], known: Mapping[str, object]) -> None:
    """SettingsError unless every name in `names` is a known step."""
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SettingsError(f"{setting} = {list(names)!r}: unknown step(s) {unknown}; known steps: {sorted(known)}")
    if len(set(names)) != len(names):
        raise SettingsError(f"{setting} = {list(names)!r}: a step is named twice")


def build_pipeline(
    setting: str, names: Sequence[str], known: Mapping[str, StepFactory[C, J]], context: C
) -> Pipeline[J]:
    """The steps named in config, each built with `context`."""
    check_names(setting, names, known)
    return Pipeline(setting, tuple(known[name](context) for name in names))
