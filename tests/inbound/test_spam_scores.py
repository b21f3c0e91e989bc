"""Mail from the service must reach the inbox (R-MAIL-1/2/3): a sample of every kind of
mail (bridge.mail.kinds), made by its real code path and read as delivered, scores below
2.0 in SpamAssassin (spamd offline, Bayes off, started by these tests)."""

from __future__ import annotations

import pytest

from bridge.mail.kinds import MailKind
from tests.inbound.outgoing import OutgoingMail
from tests.inbound.spamd import Spamd
from tests.inbound.test_dkim import KINDS

LIMIT = 2.0


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_every_kind_of_mail_scores_below_2_in_spamassassin(outgoing_mail: OutgoingMail, spamd: Spamd,
                                                           kind: MailKind) -> None:
    too_high = []
    for name, raw in outgoing_mail.of_kind(kind).items():
        score, report = spamd.score(raw)
        rules = report[report.find(" pts rule"):]
        print(f"{name}: {score}\n{rules}")  # shown with pytest -s
        if score >= LIMIT:
            too_high.append(f"{name} scores {score}:\n{report}")
    assert not too_high, "\n\n".join(too_high)
