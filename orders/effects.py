"""What must follow an order's change, as durable effects (o2o.effects): written in the change's
transaction by the services, carried out by the relay until done.

    order.capture        HANDED_OVER: capture the money, complete the order, then refund what was
                         not supplied
    order.money_return   ended without a handover: void the authorisation, or refund the capture
    order.short_refunds  COMPLETED with units not supplied: refund each such line once
    order.email          tell the customer (and for some endings the vendor) by e-mail; payments
                         writes one with each refund's success (key refund:<id>:email)
    payment.status_changed
                         (written by payments) a waiting order follows its payment; money
                         authorised for an order that already ended is given back

Every handler is safe to run again: the payment services capture, void and refund once (guarded
UPDATEs, idempotency keys derived from the payment or refund), the transitions are guarded in SQL.
A provider that does not answer (PaymentUnavailable) or a database that went away raises, and the
relay tries again with backoff. A refusal that retrying can't change gives up: the convergence
sweep and reconciliation bring it to staff.
"""

from __future__ import annotations

import logging

from o2o.effects import GiveUp, effect_add, effect_handler, event_emit

from .models import Order, OrderLine, Status

log = logging.getLogger(__name__)

MONEY = {"queue": "money", "max_attempts": 40, "backoff_base": 2.0, "backoff_cap": 300.0}
# Endings that return the customer's money (the stock goes back too, in the transition).
RETURNS_MONEY = (Status.FAILED, Status.REJECTED, Status.EXPIRED, Status.CANCELLED)
# E-mail is sent for these (orders.notifications decides the words).
EMAILED = (
    Status.PLACED,
    Status.ACCEPTED,
    Status.REJECTED,
    Status.READY,
    Status.HANDED_OVER,
    Status.EXPIRED,
    Status.CANCELLED,
)


def _event_data(order: Order, *, from_status: str, to: str) -> dict:
    """What a partner learns of an order: never an exact position, the customer's details or
    anyone's free text (a reason may name a person)."""
    return {
        "order_id": order.pk,
        "status": to,
        "previous_status": from_status,
        "vendor_id": order.vendor_id,
        "fulfilment": order.fulfilment,
        "pickup_point_id": order.pickup_point_id,
        "total": order.total,
        "currency": order.currency,
        "items": [
            {"product_id": line.product_id, "name": line.name_en, "quantity": line.quantity}
            for line in order.lines.all()
        ],
    }


def transition_effects_add(*, order_id: int, from_status: str, to: str, event_id: int) -> None:
    """Called by the state machine inside the transaction of each transition."""
    if to == Status.HANDED_OVER:
        effect_add(
            kind="order.capture", key=f"order:{order_id}:capture", payload={"order_id": order_id}
        )
    elif to in RETURNS_MONEY:
        effect_add(
            kind="order.money_return",
            key=f"order:{order_id}:money_return",
            payload={"order_id": order_id},
        )
    elif (
        to == Status.COMPLETED
        and OrderLine.objects.filter(order_id=order_id, short_quantity__gt=0).exists()
    ):
        effect_add(
            kind="order.short_refunds",
            key=f"order:{order_id}:short_refunds",
            payload={"order_id": order_id},
        )
    if to in EMAILED:
        effect_add(
            kind="order.email",
            key=f"order:{order_id}:email:{event_id}",
            payload={"order_id": order_id, "status": to, "event_id": event_id},
        )
    order = Order.objects.get(pk=order_id)
    event_emit(
        type=f"order.{to}",
        aggregate="order",
        aggregate_id=order_id,
        data=_event_data(order, from_status=from_status, to=to),
    )


def line_short_effects_add(*, order_id: int, line_id: int, quantity: int, short_total: int) -> None:
    """Units of a line can't be supplied: the customer is told by e-mail (once per change)."""
    effect_add(
        kind="order.email",
        key=f"order:{order_id}:line_short:{line_id}:{short_total}",
        payload={"order_id": order_id, "line_id": line_id, "quantity": quantity},
    )


def _payments():
    from payments import services

    return services


@effect_handler("order.capture", **MONEY)
def order_capture(payload: dict) -> None:
    """Capture the money of a handed-over order, complete it, then refund the units the vendor
    could not supply (its own effect, written by the completion)."""
    from .services import order_complete

    order = Order.objects.filter(pk=payload["order_id"]).first()
    if order is None or order.payment_id is None:
        return
    if order.status not in (Status.HANDED_OVER, Status.COMPLETED):
        return
    payments = _payments()
    try:
        payments.payment_capture(payment_id=order.payment_id)
    except payments.PaymentRefused as exc:
        # e.g. the authorisation lapsed at the provider: retrying can't help; staff must act
        # (the convergence sweep reports it as a discrepancy).
        raise GiveUp(f"capture refused: {exc.messages[0]}") from exc
    except payments.InvalidTransition as exc:
        raise GiveUp(str(exc)) from exc
    order_complete(order_id=order.pk)


@effect_handler("order.money_return", **MONEY)
def order_money_return(payload: dict) -> None:
    """An order ended without a handover: void the authorisation, or refund what was captured."""
    from payments.models import Payment

    order = Order.objects.filter(pk=payload["order_id"]).first()
    if order is None or order.payment_id is None:
        return
    status = Payment.objects.filter(pk=order.payment_id).values_list("status", flat=True).first()
    if status in (None, Payment.Status.FAILED, Payment.Status.VOIDED, Payment.Status.REFUNDED):
        return  # nothing held: no need to ask the provider
    payments = _payments()
    try:
        payments.payment_return_all(
            payment_id=order.payment_id, reason=order.reason or order.status
        )
    except payments.PaymentRefused as exc:
        raise GiveUp(f"return refused: {exc.messages[0]}") from exc


@effect_handler("order.short_refunds", **MONEY)
def order_short_refunds(payload: dict) -> None:
    from .services import order_short_lines_refund

    order_short_lines_refund(order_id=payload["order_id"], raise_unavailable=True)


@effect_handler(
    "order.email", queue="notifications", max_attempts=10, backoff_base=30.0, backoff_cap=3600.0
)
def order_email(payload: dict) -> None:
    from . import notifications

    if "refund_id" in payload:
        # Written by payments with the refund's success, keyed by the refund: sent once.
        notifications.refund_email(order_id=payload["order_id"], refund_id=payload["refund_id"])
    elif "line_id" in payload:
        notifications.line_short_email(
            order_id=payload["order_id"], line_id=payload["line_id"], quantity=payload["quantity"]
        )
    else:
        notifications.order_email(
            order_id=payload["order_id"], status=payload["status"], event_id=payload["event_id"]
        )


@effect_handler("payment.status_changed", queue="money", max_attempts=40, atomic=True)
def payment_status_changed(payload: dict) -> None:
    """Written by payments with each committed status change of a payment (payments never imports
    orders): the order follows, in the same transaction as this effect's completion."""
    from .services import on_payment_status_changed

    on_payment_status_changed(order_id=payload["order_id"], status=payload["status"])
