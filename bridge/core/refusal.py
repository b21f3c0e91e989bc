"""The one shape of "this will not be done, and here is why" that every stage raises.

Where it sits: under everything. The sender check (R-ACCT-3), metering (R-DEP-9), the
intake and inbound pipelines raise a `Refusal` subclass with the sentence a person
reads and the rule it rests on; the runner that catches it records both and, where
someone should hear about it, mails them (STYLE 2).
"""

from __future__ import annotations


class Refusal(Exception):
    """Work that will not be done. `reason` says what was wrong and what to do;
    `rule` cites the service rule (SPEC.md id), when there is one."""

    default_rule: str | None = None

    def __init__(self, reason: str, *, rule: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule if rule is not None else self.default_rule
