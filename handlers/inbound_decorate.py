"""Inbound step `decorate`: choose the mail's footer by plan and opt-out (R-MAIL-1/3).

Where it sits: after `to-pdf`, before `deliver`. An account opted in to promotional
mail (every Free account, R-PLAN-1, and paying accounts that did not opt out) gets
the promotional block from the config templates, with the account's one-click opt-out
(List-Unsubscribe, RFC 8058); an opted-out paying account gets none. Every mail ends
with the service's postal address.
"""

from __future__ import annotations

from bridge.inbound.accounts import token_for
from bridge.inbound.jobs import InboundFaxJob
from bridge.inbound.messages import Footers
from bridge.inbound.pipeline import InboundContext, RejectInbound
from bridge.models import Account


class Decorate:
    """Decide the footer: promotional block and opt-out, or the postal address only."""

    name = "decorate"

    def __init__(self, context: InboundContext) -> None:
        self.db = context.services.db
        self.footers: Footers = context.footers

    async def process(self, job: InboundFaxJob) -> None:
        async with self.db.transaction() as tx:
            account = await tx.get(Account, job.account_id)
            if account is None:
                raise RejectInbound("the account no longer exists")
            promotional = account.promo_opt_in
            token = await token_for(tx, "unsubscribe", account.id) if promotional else None
        job.footer = self.footers.footer(promotional=promotional, unsubscribe_token=token)
