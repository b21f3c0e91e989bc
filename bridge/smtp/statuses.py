"""SMTP replies faxbridge gives, as named constants with enhanced status codes (RFC 3463).

Where it sits: the SMTP front door (`bridge.smtp.frontdoor`) and the recipient grammar
(`bridge.smtp.recipients`) answer with these; every refusal says in a human sentence what was
wrong and what to do. Replies that take a detail are format strings. Every reply the front
door sends, aiosmtpd's own included, passes `with_enhanced_code` on its way out.
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
ERR_503_TLS_ACTIVE = "503 5.5.1 TLS is already active on this connection"
ERR_530_AUTH_REQUIRED = "530 5.7.0 Authentication required: log in with AUTH first"
ERR_535_AUTH_FAILED = "535 5.7.8 Authentication failed: check the address and PIN"
ERR_550_NULL_SENDER = (
    "550 5.7.1 Messages with an empty sender (bounces) cannot be faxed"
)
# The replies of faxbridge's own DATA reader (bridge.smtp.frontdoor.FaxbridgeSMTP).
GO_AHEAD_DATA = "354 End data with <CR><LF>.<CR><LF>"
ERR_503_NEED_RCPT = "503 5.5.1 Give at least one RCPT TO first"
ERR_501_DATA_SYNTAX = "501 5.5.4 DATA takes no argument"
ERR_500_LINE_TOO_LONG = (
    "500 5.5.2 Line too long: lines may be at most 998 characters (RFC 5321)"
)

# The enhanced code a reply that comes without one is given, by its reply code
# (RFC 3463, and the IANA registry of RFC 5248); any other code gets X.0.0 of its class.
ENHANCED_BY_REPLY = {
    "235": "2.7.0",
    "421": "4.3.2", "451": "4.3.0", "452": "4.3.1", "454": "4.7.0",
    "500": "5.5.2", "501": "5.5.4", "502": "5.5.1", "503": "5.5.1", "504": "5.5.4",
    "530": "5.7.0", "535": "5.7.8", "538": "5.7.11", "552": "5.3.4", "553": "5.1.3",
    "555": "5.5.4",
}
# What a reply says when it says nothing but its code, by class.
_BARE_TEXT = {"2": "OK", "4": "Temporary failure; please try again later", "5": "Refused"}
_REPLY = re.compile(
    r"(?P<code>(?P<cls>[245])\d\d)"
    r"(?:(?P<sep>[ -])(?:(?P<enhanced>[245]\.\d{1,3}\.\d{1,3})(?: |$))?(?P<text>.*))?",
    re.DOTALL,
)


def with_enhanced_code(status: str) -> str:
    """`status` as the client gets it. A 2xx, 4xx or 5xx reply carries an enhanced code
    of its own class (RFC 2034, RFC 3463): its own, or one by its reply code if it came
    without. Its text reads as a sentence: capitalised, without the "Error: " that
    aiosmtpd puts first (it says nothing the code does not). 3xx replies (354, AUTH's
    334 challenges) go out as they are. No reply is looked up by its wording, so a
    library's new wording still goes out with a code."""
    match = _REPLY.fullmatch(status)
    if match is None:
        return status
    cls, enhanced = match["cls"], match["enhanced"]
    if enhanced is None or enhanced[0] != cls:
        enhanced = ENHANCED_BY_REPLY.get(match["code"], f"{cls}.0.0")
    text = (match["text"] or "").removeprefix("Error: ").strip()
    text = text[:1].upper() + text[1:] if text else _BARE_TEXT[cls]
    return f"{match['code']}{match['sep'] or ' '}{enhanced} {text}"
