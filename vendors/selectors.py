"""Reads shared by vendor pages and APIs."""

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Product, Stock, StockLot, Vendor


def vendors_public() -> QuerySet[Vendor]:
    """Vendors a customer may see and buy from: approved only."""
    return Vendor.objects.filter(status=Vendor.Status.APPROVED).annotate(
        items_left=Sum("stock__quantity", filter=Q(stock__product__is_active=True), default=0),
        products_left=Count(
            "stock", filter=Q(stock__quantity__gt=0, stock__product__is_active=True)
        ),
    )


def vendor_stock(*, vendor: Vendor, in_stock_only: bool = False) -> QuerySet[Stock]:
    qs = (
        Stock.objects.filter(vendor=vendor, product__is_active=True)
        .select_related("product", "product__category")
        .order_by("product__category__position", "product__name_ko")
    )
    return qs.filter(quantity__gt=0) if in_stock_only else qs


def _sellable(now: datetime) -> Coalesce:
    """A Stock row's units that may be sold now: its lots' units not past their sell_by."""
    lots = (
        StockLot.objects.filter(
            vendor_id=OuterRef("vendor_id"), product_id=OuterRef("product_id"), sell_by__gt=now
        )
        .order_by()
        .values("product_id")
        .annotate(n=Sum("quantity"))
        .values("n")
    )
    return Coalesce(Subquery(lots), 0)


def _fresh_today(now: datetime) -> Exists:
    """A Stock row with a lot loaded today (Korea) that still has sellable units."""
    korea = ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(timezone.localtime(now, korea).date(), time.min, tzinfo=korea)
    return Exists(
        StockLot.objects.filter(
            vendor_id=OuterRef("vendor_id"),
            product_id=OuterRef("product_id"),
            loaded_at__gte=start,
            quantity__gt=0,
            sell_by__gt=now,
        )
    )


def vendor_public_detail(*, slug: str) -> Vendor:
    """An approved vendor with `stock_lines`: each line's `sellable` (units that may be sold now:
    expired lots still on the cart are not) and `fresh_today` (a lot loaded this morning)."""
    now = timezone.now()
    return (
        vendors_listed()
        .prefetch_related(
            Prefetch(
                "stock",
                queryset=Stock.objects.filter(product__is_active=True)
                .select_related("product", "product__category")
                .annotate(sellable=_sellable(now), fresh_today=_fresh_today(now))
                .order_by("-sellable", "product__category__position", "product__name_ko"),
                to_attr="stock_lines",
            )
        )
        .get(slug=slug)
    )


def products_active() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True).select_related("category")


def stock_editor_rows(*, vendor: Vendor) -> list[tuple[Product, int]]:
    """Every active product with the vendor's quantity (0 where the cart has none)."""
    have = dict(Stock.objects.filter(vendor=vendor).values_list("product_id", "quantity"))
    return [(p, have.get(p.pk, 0)) for p in products_active()]


def vendor_cash_tiles(*, vendor: Vendor) -> QuerySet[Stock]:
    """The products on the vendor's cart for the cash-sale page, each with `sellable` (units not
    past their date): what can be handed over now first, in the catalogue's order."""
    return (
        Stock.objects.filter(vendor=vendor, product__is_active=True)
        .select_related("product", "product__category")
        .annotate(sellable=_sellable(timezone.now()))
        .order_by("product__category__position", "product__name_ko")
    )


# --- when a cart can be ordered from: on shift now, or ahead within its published hours ---------


@dataclass(frozen=True)
class Span:
    """One stretch of a vendor's published weekly hours (local time, Korea)."""

    weekday: int  # 0 = Monday
    opens: time
    closes: time


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@functools.cache
def parse_hours(spec: str) -> tuple[Span, ...]:
    """ "mon-fri 07:00-19:00; sat 08:00-13:00" -> spans, by weekday then opening time."""
    spans: list[Span] = []
    for part in filter(None, (p.strip() for p in spec.replace(",", ";").split(";"))):
        try:
            days, hours = part.split()
            first, _sep, last = days.lower().partition("-")
            opens_s, closes_s = hours.split("-")
            opens, closes = time.fromisoformat(opens_s), time.fromisoformat(closes_s)
            start, end = _DAYS.index(first), _DAYS.index(last or first)
        except ValueError as exc:
            raise ImproperlyConfigured(f"VENDOR_HOURS: can't read {part!r}") from exc
        if closes <= opens or end < start:
            raise ImproperlyConfigured(f"VENDOR_HOURS: {part!r} ends before it starts")
        spans.extend(Span(day, opens, closes) for day in range(start, end + 1))
    return tuple(sorted(spans, key=lambda s: (s.weekday, s.opens)))


def vendor_hours(*, vendor_ids: Iterable[int]) -> dict[int, tuple[Span, ...]]:
    """Each vendor's published weekly hours (empty: none published), in one query: the vendor's
    own (VendorHours) once they have any or have published their own (even none), else the
    platform's default VENDOR_HOURS."""
    ids = list(vendor_ids)
    own: dict[int, list[Span]] = {}
    rows = (
        Vendor.objects.filter(pk__in=ids)
        .filter(Q(hours_published=True) | Q(hours__isnull=False))
        .values_list("pk", "hours__weekday", "hours__opens", "hours__closes")
    )
    for vid, weekday, opens, closes in rows:
        spans = own.setdefault(vid, [])
        if weekday is not None:
            spans.append(Span(weekday, opens, closes))
    default = parse_hours(settings.VENDOR_HOURS)
    return {
        vid: tuple(sorted(own[vid], key=lambda s: (s.weekday, s.opens))) if vid in own else default
        for vid in ids
    }


@dataclass(frozen=True)
class Availability:
    """The one rule for when a cart takes orders, read by the carts list, the vendor page, the
    basket, checkout's windows and order_place.

    On shift now: every way, any window (the vendor accepts or declines). Off shift: only ways that
    don't need the vendor now (delivery, pickup at a partner point), for a window inside the
    published hours that starts at least ORDER_AHEAD_MIN_MINUTES from now; no hours published,
    nothing until the vendor is back on shift."""

    on_shift: bool
    hours: tuple[Span, ...]
    now: datetime
    lead: timedelta

    @property
    def has_hours(self) -> bool:
        return bool(self.hours)

    @property
    def takes_orders(self) -> bool:
        return self.on_shift or self.has_hours

    def spans_between(self, start: datetime, days: int) -> list[tuple[datetime, datetime]]:
        """The published spans from the local day of `start` on, for `days` days, as datetimes."""
        tz = timezone.get_current_timezone()
        first = timezone.localtime(start, tz).date()
        out = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            for span in self.hours:
                if span.weekday == day.weekday():
                    out.append(
                        (
                            datetime.combine(day, span.opens, tzinfo=tz),
                            datetime.combine(day, span.closes, tzinfo=tz),
                        )
                    )
        return out

    @property
    def next_hours(self) -> tuple[datetime, datetime] | None:
        """The published span now or next (within a week): for "usually on shift ..."."""
        return next(((s, e) for s, e in self.spans_between(self.now, 8) if e > self.now), None)

    @property
    def lead_minutes(self) -> int:
        return int(self.lead.total_seconds() // 60)

    @property
    def in_hours_now(self) -> bool:
        hours = self.next_hours
        return hours is not None and hours[0] <= self.now

    @property
    def earliest_ahead(self) -> datetime:
        return self.now + self.lead

    def window_allowed(self, start: datetime, end: datetime) -> bool:
        """May a window [start, end] be ordered now? (Its range and shape are placement's.)"""
        if self.on_shift:
            return True
        if start < self.earliest_ahead:
            return False
        return any(s <= start and end <= e for s, e in self.spans_between(start, 1))


def _availability(*, on_shift: bool, hours: tuple[Span, ...], now: datetime) -> Availability:
    lead = timedelta(minutes=settings.ORDER_AHEAD_MIN_MINUTES)
    return Availability(on_shift=on_shift, hours=hours, now=now, lead=lead)


def vendors_listed() -> QuerySet[Vendor]:
    """vendors_public with `on_shift_now`, for availability_of without a query per vendor."""
    from tracking.models import VendorPosition

    on_shift = VendorPosition.objects.filter(vendor=OuterRef("pk"), on_shift=True)
    return vendors_public().annotate(on_shift_now=Exists(on_shift))


def availability_of(
    *, vendors: list[Vendor], now: datetime | None = None
) -> dict[int, Availability]:
    """Availability of vendors read with vendors_listed (no query)."""
    now = now or timezone.now()
    hours = vendor_hours(vendor_ids=[v.pk for v in vendors])
    out = {}
    for v in vendors:
        on_shift = bool(getattr(v, "on_shift_now"))  # noqa: B009 - an annotation mypy can't see
        out[v.pk] = _availability(on_shift=on_shift, hours=hours[v.pk], now=now)
    return out


def vendors_availability(
    *, vendor_ids: Iterable[int], now: datetime | None = None
) -> dict[int, Availability]:
    """Availability of several vendors: one query."""
    from tracking.models import VendorPosition

    ids = list(vendor_ids)
    now = now or timezone.now()
    on_shift = set(
        VendorPosition.objects.filter(vendor_id__in=ids, on_shift=True).values_list(
            "vendor_id", flat=True
        )
    )
    hours = vendor_hours(vendor_ids=ids)
    return {vid: _availability(on_shift=vid in on_shift, hours=hours[vid], now=now) for vid in ids}


def vendor_availability(*, vendor_id: int, now: datetime | None = None) -> Availability:
    return vendors_availability(vendor_ids=[vendor_id], now=now)[vendor_id]


def vendor_stock_left(*, vendor_id: int) -> dict[int, int]:
    """What the public may know of a cart's stock: {product id: units left}, products on sale."""
    rows = (
        Stock.objects.filter(vendor_id=vendor_id, product__is_active=True)
        .annotate(sellable=_sellable(timezone.now()))
        .values_list("product_id", "sellable")
    )
    return dict(rows)


def vendor_lots(*, vendor: Vendor) -> dict[int, list[StockLot]]:
    """The vendor's lots with units left, by product, in the order they are sold (soonest sell_by
    first: expired ones lead, to be written off)."""
    lots: dict[int, list[StockLot]] = {}
    for lot in StockLot.objects.filter(vendor=vendor, quantity__gt=0).order_by(
        "product_id", "sell_by", "id"
    ):
        lots.setdefault(lot.product_id, []).append(lot)
    return lots
