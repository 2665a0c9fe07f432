"""Celery wrappers: take ids, call services, safe to run twice. The money of an order (capture,
void, refund) moves by durable effects (orders/effects.py), not by tasks queued after commit."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, ignore_result=True)
def orders_expire() -> dict[str, int]:
    return services.orders_expire()


@shared_task(acks_late=True, ignore_result=True)
def orders_converge() -> dict[str, int]:
    """Every minute: orders and payments that disagree past the grace window are driven to the
    right state; what can't be fixed becomes a discrepancy for staff."""
    return services.orders_converge()


@shared_task(acks_late=True, ignore_result=True)
def orders_short_refunds_retry() -> int:
    """Refund again the units not supplied whose refund the provider refused (or that a capture
    run never got to): each line once, at most SHORT_REFUND_ATTEMPTS tries in all."""
    order_ids = services.orders_short_refund_due()
    for order_id in order_ids:
        services.order_short_lines_refund(order_id=order_id)
    return len(order_ids)


@shared_task(acks_late=True, ignore_result=True)
def orders_reconcile() -> int:
    """Nightly: order/payment pairs of all time that still disagree become discrepancies."""
    return services.orders_reconcile()
