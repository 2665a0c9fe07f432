"""Notifications other apps may listen to. Sent after commit, with ids only; business rules never
live in a receiver."""

from django.dispatch import Signal

# Sent with vendor_id after a transaction that changed that vendor's cart stock commits; a
# reservation that leaves every product it took still on sale does not send it (vendors.services).
stock_changed = Signal()

# Sent with vendor_id and status after a transaction that changed a vendor's approval commits.
vendor_status_changed = Signal()
