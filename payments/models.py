"""Payments, refunds, commission plans, the ledger, settlements and payouts. Built by the money work."""
