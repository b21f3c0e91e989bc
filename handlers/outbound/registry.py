"""The names a pipeline in config may use, and the step class behind each.

Where it sits: `bridge.app` builds the intake pipeline from config `intake.pipeline`
through this table; a later stage adds its step here (render, meter, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.outbound.pipeline import StepFactory
from handlers.outbound.authenticate import Authenticate
from handlers.outbound.meter import Meter
from handlers.outbound.parse import Parse
from handlers.outbound.render import Render

INTAKE_STEPS: Mapping[str, StepFactory] = {
    Authenticate.name: Authenticate,
    Parse.name: Parse,
    Render.name: Render,
    Meter.name: Meter,
}
