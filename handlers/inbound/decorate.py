"""Inbound step `decorate`: choose the mail's footer by plan and opt-out (R-MAIL-1/3).

Where it sits: after `to-pdf`, before `deliver`. An account opted in to promotional
mail (every Free account, R-PLAN-1, and paying accounts that did not opt out) gets
the promotional block from the config templates, with the account's one-click opt-out
(List-Unsubscribe, RFC 8058); an opted-out paying account gets none. Every mail ends
with the service's postal address.
"""

from __future__ import annotations

from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.messages import Footers
from bridge.inbound.pipeline import InboundContext, InboundStep, RejectInbound


class Decorate(InboundStep):
    """Decide the footer: promotional block and opt-out, or the postal address only."""

    name = "decorate"

    def __init__(self, context: InboundContext) -> None:
        self.accounts = context.accounts
        self.footers: Footers = context.footers

    async def process(self, job: InboundFaxJob) -> None:
        account = await self.accounts.get(job.account_id)
        if account is None:
            raise RejectInbound("the account no longer exists")
        job.footer = self.footers.footer(
            promotional=account.promo_opt_in,
            unsubscribe_token=account.unsubscribe_token if account.promo_opt_in else None,
        )
