"""Reads about customers: where a vendor delivers (drawn on the address map), their favourite
carts, and what they usually buy on a weekday."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext as _

from o2o.geo import cell_boundary, cell_of
from vendors.models import ServiceCell, Vendor

from .models import CustomerProfile, FavouriteVendor


def vendor_area_cells(*, vendor_id: int) -> list[str]:
    """The H3 cells (at SERVICE_AREA_RES) a vendor delivers to."""
    return list(
        ServiceCell.objects.filter(vendor_id=vendor_id)
        .order_by("cell")
        .values_list("cell", flat=True)
    )


def vendor_area_shapes(*, vendor_id: int) -> list[dict[str, object]]:
    """The vendor's area as hexagons for a map: each cell and its corners (lat, lng)."""
    return [
        {"cell": cell, "boundary": cell_boundary(cell)}
        for cell in vendor_area_cells(vendor_id=vendor_id)
    ]


def in_vendor_area(*, vendor_id: int, lat: float, lng: float) -> bool:
    """Whether a point lies in the vendor's area: the rule order placement applies too."""
    cell = cell_of(lat, lng, res=settings.SERVICE_AREA_RES)
    return ServiceCell.objects.filter(vendor_id=vendor_id, cell=cell).exists()


# --- favourite carts ------------------------------------------------------------------------------


def favourites_of(*, customer: CustomerProfile) -> list[FavouriteVendor]:
    """The customer's favourite carts, newest first, with their vendors (one query)."""
    return list(
        FavouriteVendor.objects.filter(customer=customer, vendor__status=Vendor.Status.APPROVED)
        .select_related("vendor")
        .order_by("-created_at", "-pk")
    )


def favourite_of(*, customer: CustomerProfile | None, vendor_id: int) -> FavouriteVendor | None:
    if customer is None:
        return None
    return FavouriteVendor.objects.filter(customer=customer, vendor_id=vendor_id).first()


def favourites_to_notify(*, customer: CustomerProfile) -> list[FavouriteVendor]:
    """The favourites the customer asked to be told about when near (for the map page)."""
    return [f for f in favourites_of(customer=customer) if f.notify_near]


# --- what the customer usually buys ---------------------------------------------------------------

USUAL_WEEKS = 6  # the same weekdays looked back at
USUAL_MIN_WEEKS = 2  # bought on at least this many of them
EVERY_WEEKDAY = (
    pgettext_lazy("every weekday", "Mondays"),
    pgettext_lazy("every weekday", "Tuesdays"),
    pgettext_lazy("every weekday", "Wednesdays"),
    pgettext_lazy("every weekday", "Thursdays"),
    pgettext_lazy("every weekday", "Fridays"),
    pgettext_lazy("every weekday", "Saturdays"),
    pgettext_lazy("every weekday", "Sundays"),
)


@dataclass(frozen=True)
class Usual:
    """A product the customer bought on this weekday in `weeks` of the last USUAL_WEEKS."""

    product_id: int
    name_ko: str
    name_en: str
    weeks: int
    quantity: int  # in the latest of those orders
    vendor_id: int  # where they bought it last
    vendor_name: str
    vendor_slug: str
    order_id: int  # the latest of those orders: "order again" fills the basket from it
    weekday: int  # Monday is 0

    @property
    def product_name(self) -> str:
        return self.name_en if (get_language() or "ko").startswith("en") else self.name_ko

    @property
    def sentence(self) -> str:
        """ "You usually get Yakult on Mondays." """
        return _("You usually get %(product)s on %(weekdays)s.") % {
            "product": self.product_name,
            "weekdays": EVERY_WEEKDAY[self.weekday],
        }


def usual_for_today(customer: CustomerProfile, now: datetime) -> list[Usual]:
    """Products the customer bought on today's weekday (Korea time) in at least USUAL_MIN_WEEKS
    of the last USUAL_WEEKS same weekdays (today not counted), from their own handed-over or
    completed orders: the most regular first. Reads the orders app's records of the customer's own
    purchases (the one read of this app up the import direction, like an insight would)."""
    from orders.models import Order, OrderLine

    local = timezone.localtime(now)
    today = local.date()
    days = {today - timedelta(weeks=w) for w in range(1, USUAL_WEEKS + 1)}
    tz = timezone.get_current_timezone()
    start = datetime.combine(min(days), time.min, tzinfo=tz)
    end = datetime.combine(today, time.min, tzinfo=tz)
    rows = (
        OrderLine.objects.filter(
            order__customer=customer,
            order__status__in=(Order.Status.HANDED_OVER, Order.Status.COMPLETED),
            order__created_at__gte=start,
            order__created_at__lt=end,
            order__vendor__status=Vendor.Status.APPROVED,
        )
        .order_by("order__created_at", "pk")
        .values_list(
            "product_id",
            "name_ko",
            "name_en",
            "quantity",
            "order_id",
            "order__created_at",
            "order__vendor_id",
            "order__vendor__name",
            "order__vendor__slug",
        )
    )
    weeks: dict[int, set] = defaultdict(set)
    latest: dict[int, tuple] = {}
    for pid, name_ko, name_en, quantity, order_id, created, vid, vname, vslug in rows:
        day = timezone.localtime(created, tz).date()
        if day not in days:
            continue  # another weekday
        weeks[pid].add(day)
        latest[pid] = (name_ko, name_en, quantity, order_id, vid, vname, vslug)
    found = []
    for pid, seen in weeks.items():
        if len(seen) < USUAL_MIN_WEEKS:
            continue
        name_ko, name_en, quantity, order_id, vid, vname, vslug = latest[pid]
        found.append(
            Usual(
                product_id=pid,
                name_ko=name_ko,
                name_en=name_en,
                weeks=len(seen),
                quantity=quantity,
                vendor_id=vid,
                vendor_name=vname,
                vendor_slug=vslug,
                order_id=order_id,
                weekday=today.weekday(),
            )
        )
    return sorted(found, key=lambda u: (-u.weeks, u.name_ko))
