"""Telling people about an order: its live pages (websocket groups) and e-mail.

Group names: `order.<id>` (the customer's order page) and `vendor.<id>.orders` (the vendor's
inbox). Messages carry ids and the new status; pages fetch what they show (a message missed while
disconnected is recovered by the snapshot a page loads on reconnect).
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from o2o.money import format_money
from o2o.realtime import broadcaster

from .models import Order, OrderEvent, Status

log = logging.getLogger(__name__)

EMAIL_ON = {
    Status.PLACED: gettext_noop("Your order #%(id)s is placed; %(vendor)s will confirm it soon."),
    Status.ACCEPTED: gettext_noop("%(vendor)s accepted your order #%(id)s."),
    Status.REJECTED: gettext_noop(
        "%(vendor)s could not take your order #%(id)s. You will not be charged."
    ),
    Status.READY: gettext_noop("Your order #%(id)s is ready."),
    Status.HANDED_OVER: gettext_noop("Your order #%(id)s was handed over. Enjoy!"),
    Status.EXPIRED: gettext_noop(
        "Nobody could take your order #%(id)s in time. You will not be charged."
    ),
    Status.REFUNDED: gettext_noop("Your order #%(id)s was refunded."),
}


# Staff cancelled: both sides hear it, with the reason (the vendor must not hand it over).
STAFF_CANCELLED_CUSTOMER = gettext_noop(
    "Our support team cancelled your order #%(id)s: %(reason)s. "
    "Any payment is returned to your card."
)
STAFF_CANCELLED_VENDOR = gettext_noop(
    "Our support team cancelled order #%(id)s: %(reason)s. Don't hand it over; "
    "the items are back in your stock."
)


# The vendor cancelled after accepting, or could not supply part of the order.
VENDOR_CANCELLED_CUSTOMER = gettext_noop(
    "%(vendor)s had to cancel your order #%(id)s: %(reason)s. Any payment is returned to your card."
)
LINE_SHORT_CUSTOMER = gettext_noop(
    "%(vendor)s can't supply %(quantity)s × %(item)s of your order #%(id)s: %(reason)s. "
    "You won't pay for it: it is refunded as soon as the order is paid."
)


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def vendor_group(vendor_id: int) -> str:
    return f"vendor.{vendor_id}.orders"


def order_changed(*, order_id: int, status: str) -> None:
    """The live pages: best-effort (a page that missed it resyncs on reconnect)."""
    order = Order.objects.filter(pk=order_id).values("vendor_id").first()
    if order is None:
        return
    last = (
        OrderEvent.objects.filter(order_id=order_id)
        .order_by("-at", "-pk")
        .values_list("to_status", "role")
        .first()
    )
    # `by` lets a page say who changed the order (the page fetches the rest over HTTP).
    message = {
        "type": "order.changed",
        "order_id": order_id,
        "status": status,
        "by": last[1] if last is not None and last[0] == status else "",
    }
    broadcaster.send(order_group(order_id), message)
    broadcaster.send(vendor_group(order["vendor_id"]), message)


def order_email(*, order_id: int, status: str, event_id: int) -> None:
    """The e-mail of one transition (the order.email effect): the event says who acted and why."""
    order = Order.objects.select_related("vendor__user", "customer__user").filter(pk=order_id)
    order = order.first()
    event = OrderEvent.objects.filter(pk=event_id, order_id=order_id).first()
    if order is None or event is None:
        return
    if status == Status.CANCELLED and event.role == OrderEvent.Role.STAFF:
        _email(order, STAFF_CANCELLED_CUSTOMER, reason=event.reason)
        _email(order, STAFF_CANCELLED_VENDOR, reason=event.reason, to=order.vendor.user.email)
        return
    if status == Status.CANCELLED and event.role == OrderEvent.Role.VENDOR:
        _email(order, VENDOR_CANCELLED_CUSTOMER, reason=event.reason)
        return
    if order.walkup and status in (Status.PLACED, Status.ACCEPTED):
        return  # bought at the cart: paid, accepted and handed over in a moment; one e-mail
    template = EMAIL_ON.get(status)
    if template:
        _email(order, template)


def line_short_email(*, order_id: int, line_id: int, quantity: int) -> None:
    """Units of a line can't be supplied: the customer gets an e-mail (the live pages refresh
    through order_changed)."""
    order = Order.objects.select_related("vendor__user", "customer__user").filter(pk=order_id)
    order = order.first()
    line = order.lines.filter(pk=line_id).first() if order is not None else None
    if line is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        item = line.name
    _email(order, LINE_SHORT_CUSTOMER, reason=line.short_reason, quantity=quantity, item=item)


REFUND_CUSTOMER = gettext_noop(
    "We refunded %(amount)s of your order #%(id)s: %(what)s. "
    "It reaches your card within a few working days, depending on your bank. "
    "In all you paid %(net)s for this order."
)


def refund_email(*, order_id: int, refund_id: int) -> None:
    """A refund of the order was made (the order.email effect payments writes with the refund's
    success): the customer hears how much, why, and what they paid in the end."""
    from payments.models import Refund

    from .receipts import order_refunds, refund_words

    order = Order.objects.select_related("vendor__user", "customer__user").filter(pk=order_id)
    order = order.first()
    if order is None or order.payment_id is None:
        return
    refund = (
        Refund.objects.select_related("order_line", "payment")
        .filter(pk=refund_id, payment_id=order.payment_id, status=Refund.Status.SUCCEEDED)
        .first()
    )
    if refund is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        what, detail = refund_words(refund, refund.order_line)
        if detail:
            what = f"{what} ({detail})"
        currency = refund.payment.currency
        _email(
            order,
            REFUND_CUSTOMER,
            amount=format_money(refund.amount, currency),
            what=what,
            net=format_money(order_refunds(order=order).net_total, currency),
        )


def _email(order: Order, template: str, *, reason: str = "", to: str = "", **extra) -> None:
    from customers.services import WALKUP_EMAIL

    if not to:
        # A walk-up guest (the shared walk-up customer) gets mail only at the address they gave.
        walkup = order.customer.user.email == WALKUP_EMAIL
        to = order.receipt_email if walkup else order.customer.user.email
        if not to:
            return
    with translation.override(settings.LANGUAGE_CODE):
        body = _(template) % {
            "id": order.pk,
            "vendor": order.vendor.name,
            "reason": reason,
            **extra,
        }
        # A failure raises: the order.email effect tries again later (the order is committed).
        send_mail(
            subject=_("Order #%(id)s") % {"id": order.pk},
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[to],
        )
