"""The money settings: currency, processor, fair use, and the plans (config [money]).

Where it sits: one field of `bridge.core.settings.Settings` (`settings.money`), read by
metering, the billing cycle and the CLI. Every figure of R-PLAN, R-USE and R-DEP is a
key here with its default in config/defaults.toml, never a literal in the code. All
amounts are integers of minor units (cents for USD): TOML would read "10.00" as a
float, and money is never a float (R-DEP-10).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanSettings(_Section):
    """One plan (R-PLAN-1..4): what it may do and what it costs."""

    # R-PLAN-1: Free cannot send.
    can_send: bool
    # Counts among the "paid customers" whose average sets the fair-use line (R-USE-5).
    paid: bool
    # The plan offered when this one is not enough (Free -> Plus, Plus -> Pro).
    upgrade_to: str = ""
    # R-DEP-7: paid in advance, not refundable.
    activation_fee_minor: int = Field(ge=0)
    monthly_fee_minor: int = Field(ge=0)
    annual_fee_minor: int = Field(ge=0)
    # R-PLAN-2: inbound units free each billing month, then inbound_unit_minor each.
    inbound_allowance_units: int = Field(ge=0)
    inbound_unit_minor: int = Field(ge=0)
    # R-PLAN-3: every unit received on a toll-free number.
    toll_free_unit_minor: int = Field(ge=0)
    # Per sent page: the longest matching E.164 prefix wins, else send_rate_minor.
    send_rate_minor: int = Field(ge=0)
    send_rates: dict[str, int] = Field(default_factory=dict)
    # R-USE-4: received pages in the window above which a Free account violates fair
    # use (0 = no absolute limit).
    fair_use_limit_units: int = Field(ge=0)
    # R-USE-5: the line is this percentage of the paid customers' average (0 = none),
    # enforced only above fair_use_floor_units.
    fair_use_multiplier_percent: int = Field(ge=0)
    fair_use_floor_units: int = Field(ge=0)
    # R-DEP-1, R-DEP-3: the first deposit and the low-water mark that triggers a top-up.
    deposit_minor: int = Field(ge=0)
    low_water_minor: int = Field(ge=0)

    @field_validator("send_rates")
    @classmethod
    def _prefixes(cls, rates: dict[str, int]) -> dict[str, int]:
        for prefix, minor in rates.items():
            if not prefix.startswith("+") or not prefix[1:].isdigit():
                raise ValueError(f"{prefix!r} is not an E.164 prefix such as '+44'")
            if minor < 0:
                raise ValueError(f"rate for {prefix} is negative")
        return rates

    def send_rate(self, number: str) -> int:
        """The per-page rate to `number` (E.164): the longest matching prefix wins."""
        best = ""
        for prefix in self.send_rates:
            if number.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        return self.send_rates[best] if best else self.send_rate_minor


class MoneySettings(_Section):
    # ISO 4217 code and the number of minor digits (2: cents).
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    minor_digits: int = Field(ge=0, le=4)
    # "offline" is the development processor (bridge/money/processor.py).
    processor: Literal["offline"]
    offline_processor_path: str
    # How often the billing cycle runs (fees, fair use, chargebacks, pending card charges).
    billing_interval_seconds: float = Field(gt=0)
    # R-USE-4..6: length of the rolling fair-use window, and the price of one unit of
    # overage.
    fair_use_window_days: int = Field(ge=1)
    overage_unit_minor: int = Field(ge=0)
    # R-DEP-8: suspend when a charge is declined and the deposit cannot stand in, or on
    # a chargeback.
    suspend_on_decline: bool
    suspend_on_chargeback: bool
    plans: dict[str, PlanSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _upgrades_exist(self) -> MoneySettings:
        for name, plan in self.plans.items():
            if plan.upgrade_to and plan.upgrade_to not in self.plans:
                raise ValueError(f"plans.{name}.upgrade_to = {plan.upgrade_to!r} is not a plan")
        return self

    def plan(self, name: str) -> PlanSettings:
        try:
            return self.plans[name]
        except KeyError:
            raise KeyError(f"plan {name!r} is not configured in [money.plans]") from None
