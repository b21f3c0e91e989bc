"""The component table: every room that runs something in the server, one line each.

Where it sits: read by the composition root (bridge.app), which builds the components in
the order their needs allow, and by the command line (bridge.cli), which adds each
component's commands. A line names the component and, for a component with a pipeline,
the handlers package its steps are found in (bridge.core.pipeline.steps_in): adding a
step is one file in that package and its name in the pipeline's config line; adding a
component is one package and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import handlers.abuse
import handlers.inbound
import handlers.outbound
from bridge.abuse.component import AbuseComponent
from bridge.core.component import Component
from bridge.inbound.component import InboundComponent
from bridge.money.component import MoneyComponent
from bridge.outbound.component import OutboundComponent


@dataclass(frozen=True)
class Plugged:
    """One component of the app, and where its pipeline's steps live (if it has one)."""

    component: type[Component]
    steps: ModuleType | None = None


COMPONENTS: tuple[Plugged, ...] = (
    Plugged(MoneyComponent),
    Plugged(OutboundComponent, handlers.outbound),
    Plugged(InboundComponent, handlers.inbound),
    Plugged(AbuseComponent, handlers.abuse),
)
