"""What staff read about demand over Seoul: per district-sized area (H3 res 8), the sales, distinct
buyers, misses and carts of a period and hour band, and where a new vendor would sell. Read from
the summaries only (SalesCube, CellBuyers, MissCube), grouped in SQL by public cell, then taken up
to res 8 here.

Privacy: sales and buyers go through the minimum-count rule (insights.privacy.areas_for over the
res-8 areas: a small area is merged into its parent, then pooled as "elsewhere", then hidden);
misses (counts of askers, not buyers) are shown per area only from INSIGHT_MIN_BUYERS up. Every
other figure of an area whose cells' sales were merged goes to the same merged area, so the areas
never overlap. CellBuyers keeps the hour, so the buyers counted for an hour band are exactly
the band's own.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import h3
from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy, ngettext

from .models import CellBuyers, Channel, MissCube, MissKind, SalesCube
from .privacy import ELSEWHERE, areas_for

DISPLAY_RES = 8
MAX_AREAS = 2_000
TOP = 10
PERIODS = (7, 28)
# Hour bands, local time: [start, end).
BANDS: dict[str, tuple[str, int, int]] = {
    "all": (gettext_lazy("All day"), 0, 24),
    "morning": (gettext_lazy("Morning (6-11)"), 6, 11),
    "lunch": (gettext_lazy("Lunch (11-14)"), 11, 14),
    "afternoon": (gettext_lazy("Afternoon (14-18)"), 14, 18),
    "evening": (gettext_lazy("Evening (18-22)"), 18, 22),
}


@dataclass
class Area:
    cell: str  # an H3 cell (res 8, or coarser where sales were merged), or ELSEWHERE
    units: int | None = None  # None: no sales here, or hidden by the rule
    amount: int | None = None
    buyers: int | None = None
    none_near: int = 0  # shown only when `misses` is not None
    sold_out: int = 0
    misses: int | None = None  # None: fewer than the minimum (hidden)
    carts_now: int = 0
    carts_sold: int = 0
    top_product_id: int | None = None
    score: float = 0.0
    reason: str = ""
    _sellers: set[int] = field(default_factory=set, repr=False)
    _by_product: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def carts(self) -> int:
        return max(self.carts_now, self.carts_sold)

    @property
    def res(self) -> int:
        return h3.get_resolution(self.cell) if self.cell else -1

    @property
    def merged(self) -> bool:
        """Sales of small areas merged with their neighbours' (a coarser cell)."""
        return bool(self.cell) and self.res < DISPLAY_RES

    @property
    def boundary(self) -> list[list[float]]:
        if not self.cell:
            return []
        return [[round(lat, 6), round(lng, 6)] for lat, lng in h3.cell_to_boundary(self.cell)]


@dataclass
class Demand:
    days: int
    band: str
    first: date
    last: date
    areas: list[Area]  # by sales amount, then misses (at most MAX_AREAS, "elsewhere" last)
    top: list[Area]  # where a new vendor would sell
    hidden_buyers: bool  # some sales were too few to show anywhere
    product_names: dict[int, str]


def _period(days: int, today: date | None) -> tuple[date, date]:
    last = today or timezone.localdate()
    return last - timedelta(days=days - 1), last


def _display(cell: str) -> str:
    if not cell:
        return ELSEWHERE
    res = h3.get_resolution(cell)
    return h3.cell_to_parent(cell, DISPLAY_RES) if res > DISPLAY_RES else cell


def _placer(shown: dict[str, str | None]):
    """The area a res-8 cell's other figures (misses, carts) go to: its own sales area when its
    sales are shown on their own or merged; else the merged area that holds it; else itself."""
    merged = {t for c, t in shown.items() if t and t != c}

    def place(cell: str) -> str:
        if not cell:
            return cell
        own = shown.get(cell)
        if own:
            return own
        for res in range(DISPLAY_RES - 1, -1, -1):
            parent = h3.cell_to_parent(cell, res)
            if parent in merged:
                return parent
        return cell

    return place


def demand_areas(*, days: int, band: str, today: date | None = None) -> Demand:
    """The figures of the staff demand page and API (see the module's docstring)."""
    if days not in PERIODS or band not in BANDS:
        raise ValueError((days, band))
    first, last = _period(days, today)
    _label, start, end = BANDS[band]
    in_band = Q(hour__gte=start, hour__lt=end)
    cube = SalesCube.objects.filter(in_band, day__gte=first, day__lte=last)
    k = settings.INSIGHT_MIN_BUYERS

    sales = cube.values("cell", "vendor_id").annotate(u=Sum("units"), a=Sum("amount"))
    buyers_q = CellBuyers.objects.filter(in_band, day__gte=first, day__lte=last)
    buyers: dict[str, set[int]] = defaultdict(set)
    for cell, buyer in buyers_q.values_list("cell", "buyer").distinct().iterator():
        buyers[_display(cell)].add(buyer)
    shown = areas_for(buyers, k=k)  # res-8 area -> the area shown (or None: hidden)
    place = _placer(shown)

    rows: dict[str, Area] = {}

    def row(cell: str) -> Area:
        return rows.setdefault(cell, Area(cell=cell))

    hidden = False
    for s in sales.iterator():
        own = _display(s["cell"])
        target = shown.get(own)
        if target is None:  # nothing of it shown, not even that a cart sold there
            hidden = hidden or bool(s["u"] or s["a"])
            continue
        r = row(target)
        r.units = (r.units or 0) + s["u"]
        r.amount = (r.amount or 0) + s["a"]
        r._sellers.add(s["vendor_id"])
    for target in {t for t in shown.values() if t is not None}:
        members = [c for c, t in shown.items() if t == target]
        row(target).buyers = len(set().union(*(buyers[c] for c in members)))

    misses = (
        MissCube.objects.filter(in_band, day__gte=first, day__lte=last)
        .values("cell", "product_id", "kind")
        .annotate(n=Sum("misses"))
    )
    for m in misses.iterator():
        r = row(place(_display(m["cell"])))
        if m["kind"] == MissKind.NONE_NEAR:
            r.none_near += m["n"]
        else:
            r.sold_out += m["n"]
        r._by_product[m["product_id"]] = r._by_product.get(m["product_id"], 0) + m["n"]

    from tracking.models import VendorPosition

    now = (
        VendorPosition.objects.filter(on_shift=True)
        .exclude(public_cell="")
        .values("public_cell")
        .annotate(n=Count("vendor_id"))
    )
    for p in now.iterator():
        row(place(_display(p["public_cell"]))).carts_now += p["n"]

    for r in rows.values():
        r.carts_sold = len(r._sellers)
        total = r.none_near + r.sold_out
        if total >= k:
            r.misses = total
            r.top_product_id = max(r._by_product, key=lambda p: (r._by_product[p], -p))
            r.score = round(total / (1 + r.carts), 2)
            r.reason = _reason(r)
        else:
            r.none_near = r.sold_out = 0
    ranked = sorted(rows.values(), key=lambda r: (-(r.amount or 0), -(r.misses or 0), r.cell))
    areas = [r for r in ranked if r.cell][:MAX_AREAS] + [r for r in ranked if not r.cell]
    top = sorted((r for r in areas if r.cell and r.misses), key=lambda r: (-r.score, r.cell))[:TOP]
    return Demand(
        days=days,
        band=band,
        first=first,
        last=last,
        areas=areas,
        top=top,
        hidden_buyers=hidden,
        product_names=_names({r.top_product_id for r in top if r.top_product_id}),
    )


def _reason(r: Area) -> str:
    if r.carts == 0:
        return ngettext(
            "%(misses)s asked here and no cart works here.",
            "%(misses)s asked here and no cart works here.",
            r.misses or 0,
        ) % {"misses": r.misses}
    if r.sold_out > r.none_near:
        return ngettext(
            "%(misses)s asked here; the %(carts)s cart here sold out of what they wanted.",
            "%(misses)s asked here; the %(carts)s carts here sold out of what they wanted.",
            r.carts,
        ) % {"misses": r.misses, "carts": r.carts}
    return ngettext(
        "%(misses)s asked here for products the %(carts)s cart here does not carry.",
        "%(misses)s asked here for products the %(carts)s carts here do not carry.",
        r.carts,
    ) % {"misses": r.misses, "carts": r.carts}


def _names(ids: set[int]) -> dict[int, str]:
    from vendors.models import Product

    return {p.pk: p.name for p in Product.objects.filter(pk__in=ids).only("name_ko", "name_en")}


@dataclass
class ChannelDay:
    day: date | None  # None: the range's total
    figures: list[tuple[str, int, int]]  # (channel, units, amount), in Channel's order


def sales_by_channel(*, first: date, last: date) -> list[ChannelDay]:
    """Units and amount per day (days with sales, newest first) and per channel (online, regulars,
    walk-up QR, cash), then the range's total, from SalesCube grouped in SQL: one query."""
    rows = (
        SalesCube.objects.filter(day__gte=first, day__lte=last)
        .values("day", "channel")
        .annotate(units=Sum("units"), amount=Sum("amount"))
    )
    by_day: dict[date, dict[str, tuple[int, int]]] = defaultdict(dict)
    total: dict[str, tuple[int, int]] = {}
    for r in rows:
        by_day[r["day"]][r["channel"]] = (r["units"], r["amount"])
        u, a = total.get(r["channel"], (0, 0))
        total[r["channel"]] = (u + r["units"], a + r["amount"])

    def figures(values: dict[str, tuple[int, int]]) -> list[tuple[str, int, int]]:
        return [(c, *values.get(c, (0, 0))) for c in Channel.values]

    days = [ChannelDay(day=d, figures=figures(by_day[d])) for d in sorted(by_day, reverse=True)]
    return [*days, ChannelDay(day=None, figures=figures(total))] if days else []
