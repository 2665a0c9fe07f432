"""The order's payment: starting it at the provider and following what the provider decides."""

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import Order, OrderEvent, Status
from .transitions import RELEASES_STOCK, InvalidTransition, _transition

log = logging.getLogger(__name__)
Role = OrderEvent.Role

# --- payment --------------------------------------------------------------------------------


def order_payment_start(*, order_id: int, return_url: str) -> str:
    """Start the payment at the provider; the URL of its card page. Safe to call twice."""
    from payments.services import payment_start

    order = Order.objects.get(pk=order_id)
    if order.status != Status.PENDING_PAYMENT:
        raise InvalidTransition(_("This order is not waiting for payment."))
    now = timezone.now()
    if order.expires_at is not None and order.expires_at <= now:
        # The window closed before the sweep came by: end it now, as the sweep would.
        with transaction.atomic(), contextlib.suppress(InvalidTransition):
            _transition(
                order_id=order.pk,
                action="fail",
                role=Role.SYSTEM,
                reason="not paid in time",
                scope={"expires_at__lte": now},
            )
        raise InvalidTransition(_("The time to pay for this order has run out."))
    payment = payment_start(
        order_id=order.pk,
        amount=order.total,
        currency=order.currency,
        return_url=return_url,
        description=f"O2O order #{order.pk}",
        vendor_id=order.vendor_id,
        commission=order.commission,
        platform_fee=order.platform_fee,
        # The provider takes no card after the order's payment window: a declined card may be
        # followed by another until then, and none can be authorised once the stock is released.
        expires_at=order.expires_at,
    )
    Order.objects.filter(pk=order.pk, payment_id__isnull=True).update(payment_id=payment.pk)
    return payment.checkout_url


def _accept_deadline(*, order_id: int, now: datetime) -> datetime:
    """How long a paid order waits for its vendor: ORDER_ACCEPT_MINUTES from now, or, for an
    order placed ahead while the cart was off shift, from the start of the vendor's next hours."""
    from vendors.selectors import vendor_availability

    start = now
    vendor_id = Order.objects.filter(pk=order_id).values_list("vendor_id", flat=True).first()
    if vendor_id is not None:  # (no such order: the transition refuses it)
        availability = vendor_availability(vendor_id=vendor_id, now=now)
        if not availability.on_shift and availability.next_hours is not None:
            start = max(now, availability.next_hours[0])
    return start + timedelta(minutes=settings.ORDER_ACCEPT_MINUTES)


@transaction.atomic
def order_payment_settled(*, order_id: int, payment_status: str) -> Order | None:
    """The payment of a waiting order was decided at the provider: PLACED or FAILED (its window
    closed at the provider). A declined card is not a decision: the payment stays pending for
    another card. Repeated or late news (a webhook after the return page) changes nothing."""
    now = timezone.now()
    try:
        if payment_status == "authorised":
            order = _transition(
                order_id=order_id,
                action="authorise",
                role=Role.SYSTEM,
                placed_at=now,
                expires_at=_accept_deadline(order_id=order_id, now=now),
            )
            if order.walkup:
                # Bought standing at the cart: the buyer has it in hand (counter.services).
                from .transitions import order_hand_over_at_cart

                return order_hand_over_at_cart(order_id=order_id)
            return order
        if payment_status == "failed":
            # A declined card leaves the payment open (another card may be tried): it fails only
            # when its window is over at the provider, or if it was never started.
            from payments.selectors import payment_for_order

            payment = payment_for_order(order_id=order_id)
            code = payment.failure_code if payment is not None else ""
            return _transition(
                order_id=order_id,
                action="fail",
                role=Role.SYSTEM,
                reason="not paid in time" if code == "expired" else "payment failed",
            )
    except InvalidTransition:
        return None
    return None


def order_payment_refresh(*, order_id: int) -> Order:
    """Ask the provider how the payment of a waiting order stands and apply it (the return from
    the card page, a webhook, or a customer pressing "check again"). The provider is the truth.
    Raises payments' PaymentUnavailable when the provider does not answer in time."""
    from payments.services import payment_sync

    order = Order.objects.get(pk=order_id)
    # An order that ended while its card page was open (cancelled) is asked too: money
    # authorised late is given back (on_payment_status_changed).
    waiting = order.status == Status.PENDING_PAYMENT
    if order.payment_id is not None and (waiting or order.status in RELEASES_STOCK):
        payment = payment_sync(payment_id=order.payment_id)
        order_payment_settled(order_id=order_id, payment_status=payment_outcome(payment.status))
        order.refresh_from_db()
        if order.status in RELEASES_STOCK and payment_outcome(payment.status) == "authorised":
            # The order ended but money is still held (a lost void, a late authorisation): give
            # it back now, the customer is asking.
            from payments.services import payment_return_all

            payment_return_all(payment_id=order.payment_id, reason=order.reason or order.status)
    return order


def payment_outcome(status: str) -> str:
    """What a payment's status means for a waiting order: authorised, failed or still pending."""
    s = str(status).lower()
    if s in ("authorised", "captured", "partially_refunded", "refunded"):
        return "authorised"
    if s in ("failed", "voided"):
        return "failed"
    return "pending"


def on_payment_status_changed(*, order_id: int, status: str, **kwargs: Any) -> None:
    """A payment changed at the provider (webhook, sync, capture): a waiting order follows it.
    Money authorised for an order that already ended without a handover (cancelled by staff or
    the customer while the card page was still open) is given back. Runs in a transaction (the
    payment.status_changed effect's)."""
    if payment_outcome(status) != "pending":
        settled = order_payment_settled(order_id=order_id, payment_status=payment_outcome(status))
        if (
            settled is None
            and str(status).lower() == "authorised"
            and Order.objects.filter(pk=order_id, status__in=RELEASES_STOCK).exists()
        ):
            from o2o.effects import effect_add

            effect_add(
                kind="order.money_return",
                key=f"order:{order_id}:late_authorisation_return",
                payload={"order_id": order_id},
            )
