"""Reads of payments that pages and APIs share."""

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Payment, Refund


def payment_for_order(*, order_id: int) -> Payment | None:
    return Payment.objects.filter(order_id=order_id).first()


def payments_for_orders(*, order_ids: Iterable[int]) -> dict[int, Payment]:
    """order id → its payment, in one query (orders without one are left out)."""
    return {p.order_id: p for p in Payment.objects.filter(order_id__in=list(order_ids))}


def payment_refunds(*, payment_id: int) -> QuerySet[Refund]:
    return Refund.objects.filter(payment_id=payment_id).order_by("created_at", "pk")
