"""What the customer got back and paid in the end: the refunds of an order in words, for the order
page, the receipt, the API and the refund e-mail (one reading, so they never disagree)."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from payments.models import Payment, Refund
from payments.selectors import payment_for_order, payment_refunds

from .models import Order, OrderLine, Status

# Orders that ended before any money was taken (an authorisation is voided, nothing is charged).
ENDED_UNPAID = (Status.FAILED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED)


@dataclass(frozen=True)
class RefundRow:
    id: int
    amount: int
    currency: str
    kind: str
    what: str  # the reason in words, in the active language
    detail: str  # what staff or the vendor wrote, when the customer may read it; else ""
    status: str
    status_label: str
    created_at: datetime
    succeeded_at: datetime | None
    order_line_id: int | None

    @property
    def succeeded(self) -> bool:
        return self.status == Refund.Status.SUCCEEDED


@dataclass(frozen=True)
class OrderRefunds:
    refunds: list[RefundRow]
    refunded_total: int  # refunds made (succeeded), in minor units
    net_total: int  # see order_refunds
    captured: bool  # the money was taken: net_total is what was paid, not what will be
    # A regular's delivery on a commitment plan: what the plan's price saved on the list price
    # (the platform pays it to the vendor; payments.ledger). 0 for other orders.
    price_advantage: int = 0

    @property
    def pending_total(self) -> int:
        return sum(r.amount for r in self.refunds if r.status == Refund.Status.PENDING)


def refund_status_label(status: str) -> str:
    labels: dict[str, str] = {
        Refund.Status.PENDING: pgettext("refund", "On its way"),
        Refund.Status.SUCCEEDED: pgettext("refund", "Refunded"),
        Refund.Status.FAILED: pgettext("refund", "Failed: our team is on it"),
    }
    return labels.get(status, status)


def refund_words(refund: Refund, line: OrderLine | None) -> tuple[str, str]:
    """(what, detail): the reason of a refund in the customer's words, and the free text that
    goes with it when it was written for the customer (a staff line refund, a line not supplied).
    A dispute's note and an order's status code are internal: not shown."""
    item = line.name if line is not None else ""
    kind = refund.kind
    if kind == Refund.Kind.LINE:
        return _("Item refunded: %(item)s") % {"item": item}, refund.reason
    if kind == Refund.Kind.SHORT:
        reason = line.short_reason if line is not None else ""
        return _("Not supplied: %(item)s") % {"item": item}, reason
    if kind == Refund.Kind.ORDER:
        return _("The whole order was refunded"), ""
    if kind == Refund.Kind.DISPUTE:
        return _("After your problem report"), ""
    if kind == Refund.Kind.PROVIDER:
        return _("Refunded by the payment provider"), ""
    return pgettext("refund kind", "Refund"), refund.reason


def _row(refund: Refund, currency: str) -> RefundRow:
    what, detail = refund_words(refund, refund.order_line)
    return RefundRow(
        id=refund.pk,
        amount=refund.amount,
        currency=currency,
        kind=refund.kind,
        what=what,
        detail=detail,
        status=refund.status,
        status_label=refund_status_label(refund.status),
        created_at=refund.created_at,
        succeeded_at=refund.succeeded_at,
        order_line_id=refund.order_line_id,
    )


def order_refunds(*, order: Order) -> OrderRefunds:
    """Every refund of the order, oldest first, and the totals. `net_total`: once the money was
    taken, what was taken less the refunds made; before that, what will be taken (the total less
    the units not supplied); 0 for an order that ended without taking any. Two queries at most."""
    payment: Payment | None = (
        payment_for_order(order_id=order.pk) if order.payment_id is not None else None
    )
    rows: list[RefundRow] = []
    if payment is not None:
        refunds = payment_refunds(payment_id=payment.pk).select_related("order_line")
        rows = [_row(refund, payment.currency) for refund in refunds]
    refunded = sum(r.amount for r in rows if r.succeeded)
    captured = payment is not None and payment.amount_captured > 0
    if payment is not None and captured:
        net = payment.amount_captured - refunded
    elif order.status in ENDED_UNPAID:
        net = 0
    else:
        net = order.net_total
    return OrderRefunds(
        refunds=rows,
        refunded_total=refunded,
        net_total=net,
        captured=captured,
        price_advantage=payment.price_advantage if payment is not None else 0,
    )
