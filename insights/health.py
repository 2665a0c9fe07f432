"""What the invariant check (o2o.invariants) asks of the record: every completed sale is in it,
every sale undone nets to nothing, and the summaries are not left behind."""

from datetime import datetime, timedelta

from django.db.models import Exists, F, OuterRef, Q, Sum

from .models import PENDING, SaleKind, SaleRecord

RECENT = timedelta(days=30)
SUMMARIES_LAG = timedelta(minutes=10)


def sales_unrecorded(*, now: datetime, limit: int = 200) -> list[int]:
    """Completed orders of the last 30 days with units handed over but no sale in the record."""
    from orders.models import Order, OrderLine, Status

    supplied = OrderLine.objects.filter(order_id=OuterRef("pk"), quantity__gt=F("short_quantity"))
    recorded = SaleRecord.objects.filter(order_id=OuterRef("pk"), kind=SaleKind.SALE)
    return list(
        Order.objects.filter(status=Status.COMPLETED, completed_at__gte=now - RECENT)
        .filter(Exists(supplied))
        .exclude(Exists(recorded))
        .values_list("pk", flat=True)[:limit]
    )


def sales_undone_not_netted(*, now: datetime, limit: int = 200) -> list[int]:
    """Cash sales undone (cancelled after completion) whose record does not net to zero."""
    from orders.models import Order, PaymentMethod, Status

    undone = Order.objects.filter(
        status=Status.CANCELLED,
        payment_method=PaymentMethod.CASH,
        updated_at__gte=now - RECENT,
    ).values("pk")
    return list(
        SaleRecord.objects.filter(order_id__in=undone)
        .values("order_id")
        .annotate(units=Sum("units"), amount=Sum("amount"))
        .filter(~Q(units=0) | ~Q(amount=0))
        .values_list("order_id", flat=True)[:limit]
    )


def summaries_behind(*, now: datetime) -> int:
    """Rows of the record waiting for the summaries longer than they should (beat not running)."""
    return SaleRecord.objects.filter(PENDING, recorded_at__lt=now - SUMMARIES_LAG).count()
