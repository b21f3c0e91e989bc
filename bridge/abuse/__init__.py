"""The spam drop-box: the abuse mailbox read over IMAP (R-ABUSE).

Where it sits: `abuse mailbox (IMAP) -> abuse pipeline (classify, match number, act)`.
`bridge.abuse.poller` watches the mailbox (IMAPS, IDLE with a fallback poll) and hands
each new report to `bridge.abuse.pipeline`, whose steps live in handlers/abuse_*.py:
classify (what kind of report, which numbers it names), match (which of them are the
service's, held by which account) and act (open or extend the account's case, mail the
reporter and the account holder, suspend at the threshold). `bridge.abuse.component`
plugs it into the app; `bridge.abuse.cli` gives the operator `faxbridge abuse ...`.

This package's __init__ stays empty of imports: bridge.core.settings imports the settings
model from `bridge.abuse.settings` and must not pull the rest in.
"""
