"""Mail from the service must reach the inbox (R-MAIL-1/2/3): every template, made by
its real code path and read as delivered, scores below 2.0 in SpamAssassin (spamd
offline, Bayes off, started by these tests)."""

from __future__ import annotations

import pytest

from tests.inbound.outgoing import OutgoingMail
from tests.inbound.spamd import Spamd
from tests.inbound.test_dkim import TEMPLATES

LIMIT = 2.0


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_scores_below_2_in_spamassassin(outgoing_mail: OutgoingMail, spamd: Spamd,
                                                        template: str) -> None:
    score, report = spamd.score(outgoing_mail.templates[template])
    rules = report[report.find(" pts rule"):]
    print(f"{template}: {score}\n{rules}")  # shown with pytest -s
    assert score < LIMIT, f"{template} scores {score}:\n{report}"
