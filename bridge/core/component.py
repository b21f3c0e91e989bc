"""The plug contract: what a component brings to the running app, declared in one place.

Where it sits: between the composition root (bridge/app.py, with the table of components
in bridge/components.py) and each room that runs something: bridge.outbound (intake,
transmit, calls), bridge.inbound (received faxes to mail, the web pages about them),
bridge.money (the billing cycle), bridge.abuse (the abuse mailbox). A component says
  * `name`, and `sections`: the [sections] of config it reads (checked at start),
  * `needs` and `provides`: the shared services it takes from others and gives them,
    as typed `ServiceKey`s; the root builds the components in an order that satisfies
    every need, and a need nobody provides stops start-up with a clear error,
  * `steps_base`, `pipeline_setting`: the Step class of its pipeline and the setting
    that names the steps (bridge.core.pipeline finds them in the handlers package the
    component table gives),
  * `runners()`, `service_addresses()` (SMTP local parts it answers, with or without a
    `+TOKEN`), `web_routes()` (pages on the one HTTP listener, bridge.web), and
    `add_commands(groups)` for its `faxbridge` commands,
  * `start()` and `stop()` for anything else it runs.
The root builds every shared service once (the database, the queue, the outbox with its
DKIM signer, one Metering, the fax line, the web listener) and hands them over; no
component reaches into another, and none changes a shared service as a side effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from bridge.core.pipeline import Step, StepFactory
from bridge.core.runner import Runner

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """The name of a shared service and, as its type parameter, what it is."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class MissingService(LookupError):
    """A component needs a service that no component and not the root provides."""


class Provided:
    """The shared services of one app, each provided once, found by key."""

    def __init__(self) -> None:
        self._services: dict[ServiceKey[Any], Any] = {}

    def provide(self, key: ServiceKey[T], service: T) -> None:
        if key in self._services:
            raise ValueError(f"{key.name} is provided twice")
        self._services[key] = service

    def need(self, key: ServiceKey[T]) -> T:
        try:
            return self._services[key]  # typed by the key it was provided under
        except KeyError:
            raise MissingService(f"nothing provides the {key.name}") from None

    def get(self, key: ServiceKey[T]) -> T | None:
        """For an optional need: the service, or None when nothing provides it."""
        return self._services.get(key)

    def keys(self) -> list[ServiceKey[Any]]:
        """What is provided so far (the root's own, then each component's as it is built)."""
        return list(self._services)

    def provide_from(self, component: Component) -> None:
        """Take what `component` provides; it must be exactly what it declares in
        `provides` (build_order relied on that declaration)."""
        given = component.provided()
        if set(given) != set(component.provides):
            declared = sorted(key.name for key in component.provides)
            raise ValueError(f"component {component.name} declares it provides {declared}"
                             f" but gives {sorted(key.name for key in given)}")
        for key, service in given.items():
            self.provide(key, service)


@dataclass(frozen=True)
class ServiceRecipient:
    """A service address (signup@, unsubscribe+TOKEN@, ...) a message was sent to."""

    address: str
    service: str  # the local part before any +TOKEN, lower-cased
    token: str | None = None


class ServiceMailHandler(Protocol):
    """Takes mail sent to one service address.

    Called at DATA with the whole message. It must store what it needs durably before
    it returns a 2xx reply; it returns the full SMTP reply line.
    """

    async def handle(self, recipient: ServiceRecipient, envelope_from: str, content: bytes) -> str: ...


@dataclass(frozen=True)
class ServiceAddress:
    """An SMTP local part a component answers at every fax domain."""

    local_part: str
    takes_token: bool  # `unsubscribe+TOKEN@`: the token names what it is about
    handler: ServiceMailHandler


WebHandler = Callable[[Any], Awaitable[Any]]  # aiohttp: (web.Request) -> web.StreamResponse


@dataclass(frozen=True)
class WebRoute:
    """A page a component adds to the one HTTP listener (bridge.web)."""

    method: str  # "GET", "POST"
    path: str  # aiohttp route syntax: "/u/{token}"
    handler: WebHandler


@dataclass(frozen=True)
class CommandGroups:
    """Where a component adds its `faxbridge` commands: the top-level commands and the
    groups the core CLI already has ("account", "number", "jobs")."""

    commands: Any  # argparse's subparsers action (its type is private to argparse)
    groups: Mapping[str, Any]


class Component:
    """Base of every component; subclasses set the class attributes and override what
    they bring. The defaults bring nothing."""

    name: ClassVar[str]
    sections: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[tuple[ServiceKey[Any], ...]] = ()
    provides: ClassVar[tuple[ServiceKey[Any], ...]] = ()
    steps_base: ClassVar[type[Step[Any]] | None] = None
    pipeline_setting: ClassVar[str] = ""

    def __init__(self, services: Any, provided: Provided, steps: Mapping[str, StepFactory[Any, Any]]) -> None:
        """`services`: the app's bridge.services.Services (typed there: the spine does
        not know the rooms); `provided`: what the root and the components built before
        this one provide, by key (ask only for what `needs` names); `steps`: the step
        classes of this component's pipeline by name (empty without `steps_base`)."""

    @staticmethod
    def add_commands(groups: CommandGroups) -> None:
        """Add this component's `faxbridge` commands (the CLI builds no app)."""

    def provided(self) -> Mapping[ServiceKey[Any], Any]:
        """The services named in `provides`, once built."""
        return {}

    def runners(self) -> Sequence[Runner]:
        return ()

    def service_addresses(self) -> Sequence[ServiceAddress]:
        return ()

    def web_routes(self) -> Sequence[WebRoute]:
        return ()

    async def start(self) -> None:
        """Called after every runner started and before the SMTP listeners open."""

    async def stop(self) -> None:
        """Called after the listeners closed, the runners stopped (their in-flight work
        had its grace period) and the fax line closed, before the database closes."""


def build_order(
    components: Sequence[type[Component]], provided_by_root: Sequence[ServiceKey[Any]]
) -> list[type[Component]]:
    """The components in an order in which each one's needs are provided before it is
    built; MissingService for a need nobody provides or a circle of needs."""
    available = set(provided_by_root)
    ordered: list[type[Component]] = []
    waiting = list(components)
    while waiting:
        ready = [c for c in waiting if all(key in available for key in c.needs)]
        if not ready:
            missing = sorted({f"{c.name} needs the {key.name}"
                              for c in waiting for key in c.needs if key not in available})
            raise MissingService("; ".join(missing))
        for component in ready:
            ordered.append(component)
            available.update(component.provides)
            waiting.remove(component)
    return ordered
