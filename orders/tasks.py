"""Celery wrappers: take ids, call services, safe to run twice, retry transient provider errors."""

from celery import shared_task

from . import services
from .models import Order, Status


class _Transient(Exception):
    """The payment provider did not answer in time; try again later."""


def _payments():
    from payments import services as payments

    return payments


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=8,
    retry_backoff=True,
    autoretry_for=(_Transient,),
)
def order_capture(self, order_id: int) -> None:
    """Capture the money of a handed-over order, complete it, then refund the units the vendor
    could not supply. Running twice is safe: the payment service captures once (idempotency key +
    guarded UPDATE) and each short line is refunded once."""
    # COMPLETED too: a run that stopped after completing still owes the short lines' refunds.
    order = Order.objects.filter(
        pk=order_id, status__in=(Status.HANDED_OVER, Status.COMPLETED)
    ).first()
    if order is None or order.payment_id is None:
        return
    payments = _payments()
    try:
        payments.payment_capture(payment_id=order.payment_id)
    except payments.PaymentUnavailable as exc:
        raise _Transient(str(exc)) from exc
    services.order_complete(order_id=order_id)
    # Each short line once; one the provider does not answer stays PENDING for payments' resend.
    services.order_short_lines_refund(order_id=order_id)


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=8,
    retry_backoff=True,
    autoretry_for=(_Transient,),
)
def order_money_return(self, order_id: int) -> None:
    """An order ended without a handover: void the authorisation, or refund what was captured."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.payment_id is None:
        return
    payments = _payments()
    try:
        payments.payment_return_all(
            payment_id=order.payment_id, reason=order.reason or order.status
        )
    except payments.PaymentUnavailable as exc:
        raise _Transient(str(exc)) from exc


@shared_task(acks_late=True, ignore_result=True)
def orders_expire() -> dict[str, int]:
    return services.orders_expire()


@shared_task(acks_late=True, ignore_result=True)
def orders_short_refunds_retry() -> int:
    """Refund again the units not supplied whose refund the provider refused (or that a capture
    run never got to): each line once, at most SHORT_REFUND_ATTEMPTS tries in all."""
    order_ids = services.orders_short_refund_due()
    for order_id in order_ids:
        services.order_short_lines_refund(order_id=order_id)
    return len(order_ids)
