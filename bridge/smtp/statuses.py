"""SMTP replies faxbridge gives, as named constants with enhanced status codes (RFC 3463).

Where it sits: the SMTP front door (`bridge.smtp.frontdoor`) and the recipient grammar
(`bridge.smtp.recipients`) answer with these; every refusal says in a human sentence what was
wrong and what to do. Replies that take a detail are format strings.
"""

import re

OK_SENDER = "250 2.1.0 Sender OK"
OK_RECIPIENT = "250 2.1.5 Recipient OK"
OK_QUEUED = "250 2.0.0 Queued as {queue_id}"
OK_DUPLICATE = "250 2.0.0 Already queued as {queue_id}; this copy will not be faxed twice"

OK_SERVICE = "250 2.0.0 Received"
ERR_452_SEPARATE_MESSAGES = (
    "452 4.5.3 Send faxes and mail to service addresses in separate messages"
)
ERR_451_INTERNAL = (
    "451 4.3.0 Temporary problem on our side; nothing was lost, please try again later"
)
ERR_451_STORAGE = "451 4.3.0 Cannot store your message right now; please try again later"
ERR_421_SHUTTING_DOWN = "421 4.3.2 Service shutting down; please try again later"
ERR_452_TOO_MANY_RECIPIENTS = (
    "452 4.5.3 Too many recipients: at most {limit} fax numbers per message;"
    " send the rest in another message"
)
ERR_552_TOO_BIG = (
    "552 5.3.4 Message too big: the limit is {limit} bytes; send fewer or smaller"
    " attachments"
)
ERR_550_RELAY_DENIED = "550 5.7.1 Relay access denied"
ERR_550_UNKNOWN_ADDRESS = "550 5.1.1 No such address here: {address}"
ERR_550_BAD_NUMBER = "550 5.1.3 {address} is not a fax number we can dial: {reason}"
ERR_550_BAD_ADDRESS = "550 5.1.3 {address} is not a valid address"
ERR_550_SENDER = "550 5.7.1 {reason}"
ERR_530_AUTH_REQUIRED = "530 5.7.0 Authentication required: log in with AUTH first"
ERR_535_AUTH_FAILED = "535 5.7.8 Authentication failed: check the address and PIN"
ERR_550_NULL_SENDER = (
    "550 5.7.1 Messages with an empty sender (bounces) cannot be faxed"
)

# aiosmtpd's own replies that carry no enhanced code, and what faxbridge says instead.
# Keys are the exact texts aiosmtpd 1.4.6 pushes.
AIOSMTPD_REWRITES: dict[str, str] = {
    "552 Error: Too much mail data": ERR_552_TOO_BIG,
    "552 Error: message size exceeds fixed maximum message size": ERR_552_TOO_BIG,
    "503 Error: need RCPT command": "503 5.5.1 Give at least one RCPT TO first",
    "503 Error: need MAIL command": "503 5.5.1 Give MAIL FROM first",
    "503 Error: nested MAIL command": "503 5.5.1 MAIL FROM was already given",
    "500 Line too long (see RFC5321 4.5.3.1.6)": (
        "500 5.5.2 Line too long: lines may be at most 998 characters (RFC 5321)"
    ),
    "503 Error: send HELO first": "503 5.5.1 Say HELO first",
    "503 Error: send EHLO first": "503 5.5.1 Say EHLO first",
    "530 Must issue a STARTTLS command first": (
        "530 5.7.0 This port needs encryption: issue STARTTLS first"
    ),
    "454 TLS not available": "454 4.7.0 TLS not available right now; try again later",
}

# For any other error reply that comes without an enhanced code, the code by class.
ENHANCED_BY_REPLY = {
    "421": "4.3.2", "451": "4.3.0", "454": "4.7.0", "500": "5.5.2", "501": "5.5.4",
    "502": "5.5.1", "503": "5.5.1", "504": "5.5.4", "530": "5.7.0", "535": "5.7.8",
    "550": "5.0.0", "552": "5.3.4", "554": "5.0.0",
}
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?: |$)")


def with_enhanced_code(status: str) -> str:
    """`status` with an enhanced code: ours for aiosmtpd's known replies, else one by
    class for error replies that lack one (RFC 3463)."""
    rewritten = AIOSMTPD_REWRITES.get(status)
    if rewritten is not None:
        return rewritten
    code, _, text = status.partition(" ")
    if code[:1] not in ("4", "5") or _ENHANCED.match(text):
        return status
    enhanced = ENHANCED_BY_REPLY.get(code, f"{code[0]}.0.0")
    text = text.removeprefix("Error: ")
    return f"{code} {enhanced} {text[:1].upper()}{text[1:]}"
