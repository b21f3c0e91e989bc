"""Money: plans, the append-only ledger, the deposit, metering and the billing cycle.

Where it sits: beside the transmit queue. The intake pipeline's `meter` step
(handlers/meter.py) quotes and reserves a fax's cost before it is queued for sending;
the call runner charges each answered attempt through `Metering` in the transaction
that records it; received faxes are charged through `Metering.charge_receptions`; the
billing cycle (`bridge.money.billing`) takes fees, watches fair use and reconciles card
charges. Every amount is an integer of minor units in one currency (R-DEP-10).
"""
