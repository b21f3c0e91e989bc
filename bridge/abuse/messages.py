"""The words the abuse desk mails: acknowledgements, notices to account holders, suspensions.

Where it sits: the act step (bridge.abuse.cases) builds these and hands them to the
outbox in the same transaction as the case change. Every message carries the
`X-Faxbridge-Abuse` header, so one that comes back to the abuse mailbox is recognised
as a loop and quarantined, never answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

from bridge.abuse.parsing import LOOP_HEADER
from bridge.abuse.settings import AbuseSettings
from bridge.core.settings import ServiceSettings


class AbuseMessages:
    def __init__(self, service: ServiceSettings, abuse: AbuseSettings) -> None:
        self.service = service
        self.policy_url = abuse.policy_url
        self.window_days = abuse.window_days

    def _message(
        self, to: Sequence[str], subject: str, body: str, *, reference: str, in_reply_to: str = ""
    ) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.service.notices_from
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        message[LOOP_HEADER] = reference
        if in_reply_to:
            message["In-Reply-To"] = in_reply_to
            message["References"] = in_reply_to
        signature = f"\n-- \n{self.service.name} abuse desk\n{self.service.postal_address}\n"
        message.set_content(body.rstrip() + "\n" + signature)
        return message

    def acknowledgement(
        self,
        reporter: str,
        *,
        reference: str,
        in_reply_to: str,
        subject: str,
        ours: Sequence[str],
        not_ours: Sequence[str],
        unassigned: Sequence[str],
    ) -> EmailMessage:
        """Tell the reporter whether the number is served by us and what happens next."""
        lines = ["Hello,", "", "Thank you for your report. We have read it and this is what we found.", ""]
        if ours:
            lines += [
                f"{_numbers(ours)} {'is a number' if len(ours) == 1 else 'are numbers'} of {self.service.name}.",
                "We have opened a case with the customer who holds "
                + ("it" if len(ours) == 1 else "them")
                + ", sent them your report as evidence and reminded them of our",
                "policy: a fax number may not be used as the reply channel of spam (R-ABUSE-3),",
                "and unsolicited fax advertisements may not be sent through our service (R-ABUSE-1).",
                f"When several people report the same customer within {self.window_days} days, the",
                "account's sending and the number are suspended. You do not need to do anything else.",
                "",
            ]
        if unassigned:
            lines += [
                f"{_numbers(unassigned)} {'belongs' if len(unassigned) == 1 else 'belong'} to {self.service.name} but "
                f"{'is' if len(unassigned) == 1 else 'are'} not in use by any customer at present;",
                "no message can have been answered through it by one of our customers. We keep your report on file.",
                "",
            ]
        if not_ours:
            lines += [
                f"{_numbers(not_ours)} {'is' if len(not_ours) == 1 else 'are'} not served by {self.service.name}, "
                "so we cannot act on "
                + ("it." if len(not_ours) == 1 else "them."),
                "Please report it to the telephone company that serves the number, or to your",
                "national regulator; for junk faxes, first use the sender's opt-out contact (R-ABUSE-2).",
                "",
            ]
        if not (ours or not_ours or unassigned):
            lines += [
                "We could not find a fax number in your report. Please write back with the fax",
                "number that appears in the spam or on the fax you received, or attach the message",
                "or the fax itself.",
                "",
            ]
        lines += [f"Our policy: {self.policy_url}", f"Reference: {reference}. Quote it if you write to us again."]
        title = subject or "your report"
        return self._message(
            [reporter], f"Re: {title}"[:200], "\n".join(lines), reference=reference, in_reply_to=in_reply_to
        )

    def holder_notice(
        self,
        to: Sequence[str],
        *,
        case_id: int,
        reference: str,
        kind: str,
        numbers: Sequence[str],
        evidence: str,
        report_count: int,
    ) -> EmailMessage:
        """Tell the account holder what was reported, with the evidence and the policy."""
        if kind == "junk-fax":
            what = (
                "A recipient reported an unsolicited fax advertisement sent through your account.\n"
                "Sending fax advertisements without the recipient's permission is prohibited\n"
                "(R-ABUSE-1), and numbers are recycled, so an old opt-in does not count (R-ABUSE-4)."
            )
        else:
            what = (
                "Someone reported spam that gives your fax number as the way to reply or order.\n"
                "A fax number of ours may not be used as the \"drop box\" for replies to email or\n"
                "fax spam (R-ABUSE-3)."
            )
        body = (
            "Hello,\n\n"
            f"{what}\n\n"
            f"Number(s) concerned: {_numbers(numbers)}\n"
            f"Reports in this case so far: {report_count}\n\n"
            "What the report says (the lines that name your number):\n\n"
            f"{_quote(evidence)}\n\n"
            "What happens next: please stop any such use at once and reply to this message if\n"
            "you believe the report is mistaken. If several people report your account within\n"
            f"{self.window_days} days, sending from your account and the number are suspended.\n\n"
            f"Our policy: {self.policy_url}\n"
            f"Case {case_id}, report {reference}. Quote them if you contact us.\n"
        )
        subject = f"Abuse report about your fax number {_numbers(numbers)}"[:200]
        return self._message(to, subject, body, reference=reference)

    def suspension(
        self, to: Sequence[str], *, case_id: int, reference: str, numbers: Sequence[str], reporters: int
    ) -> EmailMessage:
        body = (
            "Hello,\n\n"
            f"{reporters} different people reported your account within {self.window_days} days for using\n"
            "a fax number as the reply channel of spam or for sending junk faxes (R-ABUSE-1, R-ABUSE-3).\n\n"
            "We have therefore suspended sending from your account and the number(s)\n"
            f"{_numbers(numbers)}. Faxes you send now are refused; nothing more is charged.\n\n"
            "If you believe this is a mistake, reply to this message: an operator will review\n"
            "the case and can lift the suspension.\n\n"
            f"Our policy: {self.policy_url}\n"
            f"Case {case_id}, report {reference}.\n"
        )
        return self._message(to, "Your fax account is suspended", body, reference=reference)


def _numbers(numbers: Sequence[str]) -> str:
    return ", ".join(numbers) if numbers else "(none)"


def _quote(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][:20] or ["(no text)"]
    return "\n".join(f"    > {line[:200]}" for line in lines)
