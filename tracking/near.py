"""Favourite carts near a customer: the sweep beat runs every minute (tracking.tasks.
favourites_near_notify). For each favourite whose customer asked to be told (`notify_near`) and
whose cart is on the map now, it measures from the cart's public cell centre (never its exact
position) to each of the customer's saved addresses; within FAVOURITE_NEAR_M, customers.services.
favourite_near_notice_add records it with its e-mail, once per (favourite, shift).

Bounded work: a run reads at most FAVOURITE_NEAR_BATCH favourites not yet told this shift, from
a cursor kept in the cache, so every favourite is looked at in turn however many there are."""

import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Prefetch

from customers.models import Address, FavouriteNearNotice, FavouriteVendor
from customers.services import favourite_near_notice_add
from o2o.geo import distance_m
from vendors.models import Vendor

from .models import Presence
from .selectors import _centre

log = logging.getLogger(__name__)

CURSOR_KEY = "tracking:favourites-near:cursor"


def rounded_distance(metres: float) -> int:
    """What the customer is told: to the nearest 100 m, at least 100 m."""
    return max(100, int(round(metres / 100.0)) * 100)


def _candidates(*, after: int, batch: int) -> list[FavouriteVendor]:
    """Favourites to be told about whose cart is on the map in a shift with no notice yet."""
    live = (
        FavouriteVendor.objects.filter(
            notify_near=True,
            vendor__status=Vendor.Status.APPROVED,
            vendor__position__on_shift=True,
            vendor__position__shift_started_at__isnull=False,
        )
        .exclude(vendor__position__presence=Presence.OFFLINE)
        .exclude(vendor__position__public_cell="")
    )
    told = FavouriteNearNotice.objects.filter(
        favourite=OuterRef("pk"), shift_started_at=OuterRef("vendor__position__shift_started_at")
    )
    return list(
        live.filter(~Exists(told), pk__gt=after)
        .select_related("vendor__position")
        .prefetch_related(
            Prefetch("customer__addresses", queryset=Address.objects.order_by("-is_default", "pk"))
        )
        .order_by("pk")[:batch]
    )


def favourites_near_notify(*, batch: int | None = None) -> int:
    """One run of the sweep; the number of notices recorded."""
    batch = batch or settings.FAVOURITE_NEAR_BATCH
    after = cache.get(CURSOR_KEY) or 0
    favourites = _candidates(after=after, batch=batch)
    # A short page means the end was reached: the next run starts from the beginning again.
    cache.set(CURSOR_KEY, favourites[-1].pk if len(favourites) == batch else 0, timeout=3600)
    told = 0
    for favourite in favourites:
        position = favourite.vendor.position
        centre_lat, centre_lng = _centre(position.public_cell)
        nearest = _nearest(favourite.customer.addresses.all(), centre_lat, centre_lng)
        if nearest is None:
            continue
        address, metres = nearest
        if metres > settings.FAVOURITE_NEAR_M:
            continue
        shift: datetime = position.shift_started_at  # type: ignore[assignment]
        if favourite_near_notice_add(
            favourite_id=favourite.pk,
            shift_started_at=shift,
            address_label=address.label,
            distance_m=rounded_distance(metres),
        ):
            told += 1
    if told:
        log.info("favourites near: %d notices", told)
    return told


def _nearest(addresses, lat: float, lng: float) -> tuple[Address, float] | None:
    measured = [(a, distance_m(a.lat, a.lng, lat, lng)) for a in addresses]
    return min(measured, key=lambda pair: pair[1]) if measured else None
