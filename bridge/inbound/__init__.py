"""Inbound faxes to email (issue 6): fax line in -> inbound pipeline -> outgoing mail.

Where it sits: the fax line hands every fax received on a service number to
`InboundComponent.accept_inbound_fax` (bridge.inbound.component), which spools it and
queues an `inbound` job; the inbound runner takes it through the steps named in
`inbound.pipeline` (handlers/inbound_*.py: store, to-pdf, decorate, deliver) and the
outbox mails it. Around that: one-click opt-out (bridge/http.py and the
`unsubscribe+TOKEN@` address), bounces (`bounces+TOKEN@`, R-ACCT-5 (ii)), DKIM
signing of everything the service sends (bridge/dkim.py) and retention (R-STORE).

This package file imports nothing, so `bridge.core.settings` can import the settings
models from `bridge.inbound.settings` without pulling in the rest.
"""
