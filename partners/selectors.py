"""Reads shared by the partner API and admin."""

from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from o2o.accounts.models import User
from orders.models import Fulfilment, Order, OrderLine, Status

from .models import Delivery, DeliveryAttempt, Endpoint, Partner, PointStaff

COLLECTED = (Status.HANDED_OVER, Status.COMPLETED)


def partners_of(*, user: User | AnonymousUser) -> QuerySet[Partner]:
    """The active partners a person manages."""
    if not user.is_authenticated:
        return Partner.objects.none()
    return Partner.objects.filter(owner=user, is_active=True)


def endpoints_of(*, user: User | AnonymousUser) -> QuerySet[Endpoint]:
    return (
        Endpoint.objects.filter(partner__in=partners_of(user=user))
        .select_related("partner")
        .order_by("pk")
    )


def deliveries_of(*, user: User | AnonymousUser) -> QuerySet[Delivery]:
    """Deliveries to the person's endpoints, newest first, each with its tries."""
    return (
        Delivery.objects.filter(endpoint__partner__in=partners_of(user=user))
        .select_related("event")
        .prefetch_related(
            Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("started_at", "pk"))
        )
        .order_by("-created_at", "-pk")
    )


def pickup_point_ids_of(*, user: User | AnonymousUser) -> list[int]:
    return list(
        partners_of(user=user)
        .filter(pickup_point__isnull=False)
        .values_list("pickup_point_id", flat=True)
        .distinct()
    )


def orders_at(*, point_ids: list[int]) -> QuerySet[Order]:
    """Pickup orders of these points, whatever their state, with their lines."""
    return (
        Order.objects.filter(fulfilment=Fulfilment.PICKUP, pickup_point_id__in=point_ids)
        .select_related("vendor")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("pk")))
    )


def orders_waiting_at(*, point_ids: list[int]) -> QuerySet[Order]:
    """Pickup orders ready for collection at these points, the soonest hold end first."""
    return orders_at(point_ids=point_ids).filter(status=Status.READY).order_by("expires_at", "pk")


def order_point(*, order_id: int, point_ids: list[int]) -> int | None:
    """The point (one of these) where a pickup order is to be collected, or None."""
    return (
        Order.objects.filter(
            pk=order_id, fulfilment=Fulfilment.PICKUP, pickup_point_id__in=point_ids
        )
        .values_list("pickup_point_id", flat=True)
        .first()
    )


# --- the pickup point's own people (PointStaff) ----------------------------------------------------

# Collections shown on the point's page: the last day's, at most this many.
RECENT_COLLECTIONS = 20


def point_staff_of(*, user: User | AnonymousUser) -> PointStaff | None:
    """The active point-staff role of a person, with its point; None for everyone else."""
    if not user.is_authenticated:
        return None
    return (
        PointStaff.objects.select_related("pickup_point")
        .filter(user_id=user.pk, is_active=True, pickup_point__is_active=True)
        .first()
    )


def point_orders_waiting(*, point_id: int) -> QuerySet[Order]:
    """Orders ready to collect at the point, the soonest collect-by first, with the customer (for
    the first name) and the lines."""
    return orders_waiting_at(point_ids=[point_id]).select_related("customer__user")


def point_collections_recent(*, point_id: int, now: datetime | None = None) -> QuerySet[Order]:
    """Orders collected at the point over the last day, the latest first."""
    since = (now or timezone.now()) - timedelta(days=1)
    return (
        orders_at(point_ids=[point_id])
        .filter(status__in=COLLECTED, handed_over_at__gte=since)
        .select_related("customer__user")
        .order_by("-handed_over_at", "-pk")[:RECENT_COLLECTIONS]
    )


def point_order_status(*, order_id: int) -> tuple[int | None, str] | None:
    """(pickup point, status) of an order, to say why a hand-over was refused; None: no order."""
    return Order.objects.filter(pk=order_id).values_list("pickup_point_id", "status").first()
