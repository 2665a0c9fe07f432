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
    """Capture the money of a handed-over order, then complete it. Capturing twice is safe: the
    payment service captures once (idempotency key + guarded UPDATE)."""
    order = Order.objects.filter(pk=order_id, status=Status.HANDED_OVER).first()
    if order is None or order.payment_id is None:
        return
    payments = _payments()
    try:
        payments.payment_capture(payment_id=order.payment_id)
    except payments.PaymentUnavailable as exc:
        raise _Transient(str(exc)) from exc
    services.order_complete(order_id=order_id)


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
