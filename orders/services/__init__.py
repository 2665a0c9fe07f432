"""Every write of an order, by concern (placement, transitions, payment, refunds, staff); the
effects that must follow a change are rows written in its transaction (orders/effects.py).

    checkout -> PENDING_PAYMENT --authorised--> PLACED --accept--> ACCEPTED --depart--> EN_ROUTE
       --ready--> READY --hand over (code)--> HANDED_OVER --captured--> COMPLETED
    PENDING_PAYMENT --declined / abandoned--> FAILED
    PLACED --reject--> REJECTED;  PLACED --nobody accepts in time--> EXPIRED
    PENDING_PAYMENT | PLACED --customer cancels--> CANCELLED
    READY (pickup) --not collected in the hold time--> CANCELLED (money returned)
    ACCEPTED | EN_ROUTE | READY --the vendor can't supply it after all--> CANCELLED
A cash sale at the cart (orders.services.cash) is born COMPLETED, without a payment; undone within
CASH_UNDO_MINUTES it goes COMPLETED --undo--> CANCELLED and its units go back to their lots.
Stock goes back on the cart whenever an order ends without a handover. Before the handover the
vendor may mark units of a line as not supplied (order_line_short): they are refunded, with exactly
their commission, right after the capture (order_short_lines_refund).
"""

from payments.errors import PaymentUnavailable  # re-exported for views and APIs

from .cash import NotOnCart, cash_undo_deadline, order_cash_sale, order_cash_sale_undo
from .convergence import orders_converge, orders_payments_disagreeing, orders_reconcile
from .handover_qr import (
    AlreadyHandedOver,
    HandoverTokenInvalid,
    handover_qr_shown,
    handover_token_make,
    handover_token_read,
    order_hand_over_by_token,
    order_hand_over_checked,
)
from .payment import (
    on_payment_status_changed,
    order_payment_refresh,
    order_payment_settled,
    order_payment_start,
    payment_outcome,
)
from .placement import LineIn, PricesChanged, Receive, order_place
from .refunds import (
    PROBLEM_REASON_MAX,
    PROBLEM_STATUSES,
    SHORT_REFUND_ATTEMPTS,
    order_line_refund,
    order_problem_report,
    order_short_lines_refund,
    orders_short_refund_due,
    short_commission,
)
from .staff import order_expire_now, order_staff_cancel
from .transitions import (
    EDGES,
    HANDOVER_LOCK_SECONDS,
    HANDOVER_MAX_TRIES,
    RELEASES_STOCK,
    SHORT_STATES,
    InvalidTransition,
    order_accept,
    order_accept_standing,
    order_cancel,
    order_collect_at_point,
    order_complete,
    order_depart,
    order_hand_over,
    order_hand_over_at_cart,
    order_hand_over_unattended,
    order_is_final,
    order_line_short,
    order_ready,
    order_reject,
    order_reschedule,
    order_vendor_cancel,
    orders_expire,
)

__all__ = [
    "EDGES",
    "HANDOVER_LOCK_SECONDS",
    "HANDOVER_MAX_TRIES",
    "PROBLEM_REASON_MAX",
    "PROBLEM_STATUSES",
    "RELEASES_STOCK",
    "SHORT_REFUND_ATTEMPTS",
    "SHORT_STATES",
    "AlreadyHandedOver",
    "HandoverTokenInvalid",
    "InvalidTransition",
    "LineIn",
    "NotOnCart",
    "PaymentUnavailable",
    "PricesChanged",
    "Receive",
    "cash_undo_deadline",
    "on_payment_status_changed",
    "order_cash_sale",
    "order_cash_sale_undo",
    "order_accept",
    "order_accept_standing",
    "order_hand_over_at_cart",
    "order_hand_over_unattended",
    "order_reschedule",
    "order_cancel",
    "order_collect_at_point",
    "order_complete",
    "order_depart",
    "order_expire_now",
    "handover_qr_shown",
    "handover_token_make",
    "handover_token_read",
    "order_hand_over",
    "order_hand_over_by_token",
    "order_hand_over_checked",
    "order_is_final",
    "order_line_refund",
    "order_line_short",
    "order_payment_refresh",
    "order_payment_settled",
    "order_payment_start",
    "order_place",
    "order_problem_report",
    "order_ready",
    "order_reject",
    "order_short_lines_refund",
    "order_staff_cancel",
    "order_vendor_cancel",
    "orders_converge",
    "orders_expire",
    "orders_payments_disagreeing",
    "orders_reconcile",
    "orders_short_refund_due",
    "payment_outcome",
    "short_commission",
]
