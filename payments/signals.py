"""Notifications other apps may listen to. Sent after commit (send_robust), with plain values only;
business rules never live in a receiver.

payment_status_changed(payment_id: int, order_id: int, status: str)
    after every committed change of a payment's status (PENDING → AUTHORISED, → CAPTURED, …) and
    after every refund that succeeded (status PARTIALLY_REFUNDED or REFUNDED).
"""

from django.dispatch import Signal

payment_status_changed = Signal()
