"""What the vendor's insight page shows, read from the summaries only (SalesCube, CellBuyers; never
the record): where they sold, when, this week against last, and by which channel.

The last four weeks of the vendor's cube rows are read once (a vendor sells about a thousand lines
a month: a few hundred rows), and every figure is added up from them in Python; the buyers behind
each cell are read once more for the minimum-count rule (insights.privacy).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

import h3
from django.conf import settings
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from vendors.models import Product, Vendor

from .models import CellBuyers, Channel, SalesCube, SummaryState
from .privacy import ELSEWHERE, areas_for, merge

WINDOW_DAYS = 28
DAY_HOURS = range(6, 23)  # the hours a cart usually works; widened to any hour with sales
MAX_PRODUCTS = 12  # rows of the hour chart: the best sellers


class Row(NamedTuple):
    day: date
    hour: int
    product_id: int
    cell: str
    channel: str
    units: int
    amount: int
    sales: int


@dataclass(frozen=True)
class Figures:
    units: int = 0
    amount: int = 0
    sales: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.units + other.units, self.amount + other.amount, self.sales + other.sales
        )


def _sum(rows: Iterable[Row]) -> Figures:
    total = Figures()
    for r in rows:
        total += Figures(r.units, r.amount, r.sales)
    return total


def window(*, today: date) -> tuple[date, date]:
    """The last four weeks, today included."""
    return today - timedelta(days=WINDOW_DAYS - 1), today


def vendor_rows(*, vendor_id: int, start: date, end: date) -> list[Row]:
    """The vendor's cube rows from `start` to `end` (one query, index salescube_vendor_day)."""
    fields = ("day", "hour", "product_id", "cell", "channel", "units", "amount", "sales")
    qs = SalesCube.objects.filter(vendor_id=vendor_id, day__gte=start, day__lte=end)
    return [Row(*values) for values in qs.values_list(*fields)]


def vendor_buyers(*, vendor_id: int, start: date, end: date) -> dict[str, set[int]]:
    """The distinct buyers behind each cell over the period (one query)."""
    buyers: dict[str, set[int]] = defaultdict(set)
    qs = CellBuyers.objects.filter(vendor_id=vendor_id, day__gte=start, day__lte=end)
    for cell, buyer in qs.values_list("cell", "buyer"):
        buyers[cell].add(buyer)
    return dict(buyers)


def as_of() -> datetime | None:
    """When the summaries were last brought up to date (Celery, every minute)."""
    return SummaryState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()


def product_names(*, product_ids: Iterable[int]) -> dict[int, str]:
    english = (get_language() or settings.LANGUAGE_CODE).startswith("en")
    rows = (
        Product.objects.filter(pk__in=set(product_ids))
        .order_by()
        .values_list("pk", "name_ko", "name_en")
    )
    return {pk: (en if english else ko) for pk, ko, en in rows}


# --- where ----------------------------------------------------------------------------------------

COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def compass_name(point: str) -> str:
    names = {
        "N": pgettext("direction", "north"),
        "NE": pgettext("direction", "north-east"),
        "E": pgettext("direction", "east"),
        "SE": pgettext("direction", "south-east"),
        "S": pgettext("direction", "south"),
        "SW": pgettext("direction", "south-west"),
        "W": pgettext("direction", "west"),
        "NW": pgettext("direction", "north-west"),
    }
    return names[point]


def bearing(home: tuple[float, float], to: tuple[float, float]) -> str:
    """The compass point (8 of them) from `home` towards `to`."""
    lat1, lat2 = math.radians(home[0]), math.radians(to[0])
    dlng = math.radians(to[1] - home[1])
    x = math.sin(dlng) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlng)
    degrees = (math.degrees(math.atan2(x, y)) + 360) % 360
    return COMPASS[int((degrees + 22.5) // 45) % 8]


@dataclass
class Area:
    key: str  # the cell or coarser parent cell shown; ELSEWHERE for the pooled rest
    number: int  # "Area 1" is where the vendor took the most
    figures: Figures
    buyers: int
    boundary: list[tuple[float, float]] = field(default_factory=list)
    distance_m: int | None = None
    direction: str = ""  # a compass point (COMPASS) from home

    @property
    def kind(self) -> str:
        if self.key == ELSEWHERE:
            return "elsewhere"
        return "parent" if h3.get_resolution(self.key) < settings.INSIGHT_CELL_RES else "cell"

    @property
    def label(self) -> str:
        if self.kind == "elsewhere":
            return _("Elsewhere")
        return _("Area %(number)s") % {"number": self.number}

    @property
    def place(self) -> str:
        """Where it is, from the vendor's home base: "600 m north-east of home"."""
        if self.kind == "elsewhere":
            return _("Smaller areas taken together")
        assert self.distance_m is not None
        if self.distance_m < 100:
            where = _("At your home base")
        elif self.distance_m < 1000:
            where = _("%(metres)s m %(direction)s of home") % {
                "metres": round(self.distance_m, -2),
                "direction": compass_name(self.direction),
            }
        else:
            where = _("%(km)s km %(direction)s of home") % {
                "km": f"{self.distance_m / 1000:.1f}",
                "direction": compass_name(self.direction),
            }
        if self.kind == "parent":
            return _("%(where)s (rest of this area)") % {"where": where}
        return where


@dataclass
class Where:
    areas: list[Area]  # cells and merged parents, most amount first, then ELSEWHERE if any
    hidden: int  # cells left out: too few buyers even pooled
    home: tuple[float, float]
    min_buyers: int

    @property
    def mapped(self) -> list[Area]:
        """What the map draws: merged parents first, beneath the cells."""
        placed = [a for a in self.areas if a.kind != "elsewhere"]
        return sorted(placed, key=lambda a: a.kind != "parent")


def where_of(
    *, rows: Sequence[Row], buyers: dict[str, set[int]], home: tuple[float, float]
) -> Where:
    """The sales by area, under the minimum-count rule: an area shown has at least
    INSIGHT_MIN_BUYERS distinct buyers."""
    by_cell: dict[str, dict[str, int]] = defaultdict(lambda: {"units": 0, "amount": 0, "sales": 0})
    for r in rows:
        figures = by_cell[r.cell]
        figures["units"] += r.units
        figures["amount"] += r.amount
        figures["sales"] += r.sales
    areas = areas_for(buyers)
    merged = merge(by_cell, areas)
    buyers_of: dict[str, set[int]] = defaultdict(set)
    for cell, area in areas.items():
        if area is not None:
            buyers_of[area] |= buyers[cell]
    placed = sorted(
        (key for key in merged if key != ELSEWHERE), key=lambda k: (-merged[k]["amount"], k)
    )
    out: list[Area] = []
    for number, key in enumerate(placed, start=1):
        centre = h3.cell_to_latlng(key)
        out.append(
            Area(
                key=key,
                number=number,
                figures=Figures(**merged[key]),
                buyers=len(buyers_of[key]),
                boundary=[(round(a, 6), round(b, 6)) for a, b in h3.cell_to_boundary(key)],
                distance_m=round(h3.great_circle_distance(home, centre, unit="m")),
                direction=bearing(home, centre),
            )
        )
    if ELSEWHERE in merged:
        rest = merged[ELSEWHERE]
        out.append(Area(ELSEWHERE, len(out) + 1, Figures(**rest), len(buyers_of[ELSEWHERE])))
    hidden = sum(1 for cell, area in areas.items() if area is None)
    return Where(out, hidden, home, settings.INSIGHT_MIN_BUYERS)


# --- when -----------------------------------------------------------------------------------------


@dataclass
class When:
    hours: list[int]
    products: list[tuple[int, str]]  # (id, name), best sellers first
    units: dict[tuple[int, int], int]  # (product id, hour) -> units
    weekday: int | None  # None: every day

    @property
    def peak(self) -> int:
        return max(self.units.values(), default=0)

    def row(self, product_id: int) -> list[int]:
        return [self.units.get((product_id, h), 0) for h in self.hours]

    @property
    def grid(self) -> list[tuple[int, str, list[int]]]:
        return [(pid, name, self.row(pid)) for pid, name in self.products]


def when_of(*, rows: Sequence[Row], weekday: int | None, names: dict[int, str]) -> When:
    """Units by product and hour of day, on one weekday (Monday 0) or every day."""
    units: dict[tuple[int, int], int] = defaultdict(int)
    totals: dict[int, int] = defaultdict(int)
    for r in rows:
        if weekday is None or r.day.weekday() == weekday:
            units[(r.product_id, r.hour)] += r.units
            totals[r.product_id] += r.units
    best = sorted((p for p in totals if totals[p] > 0), key=lambda p: (-totals[p], p))
    best = best[:MAX_PRODUCTS]
    seen = {hour for (_p, hour), n in units.items() if n}
    hours = list(range(min([DAY_HOURS.start, *seen]), max([DAY_HOURS.stop - 1, *seen]) + 1))
    products = [(p, names.get(p, str(p))) for p in best]
    return When(hours, products, {k: v for k, v in units.items() if k[0] in best}, weekday)


# --- this week against last ------------------------------------------------------------------------


def change(now: int, before: int) -> int | None:
    """The change in whole percent (None when there was nothing before to compare with)."""
    return round((now - before) * 100 / before) if before else None


@dataclass
class Weeks:
    this_start: date
    today: date
    this: Figures  # Monday to today
    last: Figures  # last week, Monday to the same weekday
    days: list[tuple[date, Figures | None, Figures]]  # per weekday: (this week's day, this, last)

    def changes(self) -> dict[str, int | None]:
        return {
            name: change(getattr(self.this, name), getattr(self.last, name))
            for name in ("units", "sales", "amount")
        }


def weeks_of(*, rows: Sequence[Row], today: date) -> Weeks:
    this_start = today - timedelta(days=today.weekday())
    last_start = this_start - timedelta(days=7)
    by_day: dict[date, Figures] = defaultdict(Figures)
    for r in rows:
        if r.day >= last_start:
            by_day[r.day] += Figures(r.units, r.amount, r.sales)
    days = []
    this, last = Figures(), Figures()
    for offset in range(7):
        day = this_start + timedelta(days=offset)
        before = by_day.get(last_start + timedelta(days=offset), Figures())
        now = by_day.get(day, Figures()) if day <= today else None
        if now is not None:
            this += now
            last += before
        days.append((day, now, before))
    return Weeks(this_start, today, this, last, days)


# --- by channel -------------------------------------------------------------------------------------


@dataclass
class ChannelFigures:
    channel: str
    label: str
    figures: Figures
    share: int  # percent of the amount


def channels_of(*, rows: Sequence[Row]) -> list[ChannelFigures]:
    by: dict[str, Figures] = defaultdict(Figures)
    for r in rows:
        by[r.channel] += Figures(r.units, r.amount, r.sales)
    total = sum(f.amount for f in by.values())
    return [
        ChannelFigures(
            channel.value,
            str(channel.label),
            by.get(channel.value, Figures()),
            round(by.get(channel.value, Figures()).amount * 100 / total) if total else 0,
        )
        for channel in Channel
    ]


# --- the page ------------------------------------------------------------------------------------


@dataclass
class Insight:
    vendor: Vendor
    start: date
    today: date
    as_of: datetime | None
    total: Figures
    where: Where
    when: When
    weeks: Weeks
    channels: list[ChannelFigures]
    rows: list[Row] = field(repr=False, default_factory=list)

    @property
    def empty(self) -> bool:
        return self.total.sales == 0 and self.total.units == 0


def vendor_insight(*, vendor: Vendor, today: date, weekday: int | None) -> Insight:
    """Everything the page shows but the peers and the load (insights.peers, insights.forecast):
    four queries."""
    start, end = window(today=today)
    rows = vendor_rows(vendor_id=vendor.pk, start=start, end=end)
    buyers = vendor_buyers(vendor_id=vendor.pk, start=start, end=end) if rows else {}
    names = product_names(product_ids={r.product_id for r in rows}) if rows else {}
    home = (vendor.home_lat, vendor.home_lng)
    return Insight(
        vendor=vendor,
        start=start,
        today=today,
        as_of=as_of(),
        total=_sum(rows),
        where=where_of(rows=rows, buyers=buyers, home=home),
        when=when_of(rows=rows, weekday=weekday, names=names),
        weeks=weeks_of(rows=rows, today=today),
        channels=channels_of(rows=rows),
        rows=rows,
    )
