"""The vendor against similar carts, anonymously: the median and the top quarter of their weekly
sales, their median basket and their usual best hour. Never a name, never how many.

Similar carts: approved vendors whose home base lies in the same H3 resolution-5 cell (a district,
about 250 km²) as this vendor's and that sold in the last four weeks. With fewer than
INSIGHT_MIN_PEERS of them besides the vendor, every cart that sold is taken instead; with fewer
still, there is no comparison. Each group's figures are computed once a day per group and cached
for an hour (PEERS_CACHE_SECONDS), so the page stays fast however many carts there are.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import h3
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Sum

from vendors.models import Vendor

from .models import SalesCube
from .vendor import WINDOW_DAYS, Row, window

PEER_RES = 5
PEERS_CACHE_SECONDS = 3600
EVERYONE = "all"
WEEKS = WINDOW_DAYS / 7

# {vendor id: (amount, sales, best hour)} over the window
GroupFigures = dict[int, tuple[int, int, int]]


def peer_group(vendor: Vendor) -> str:
    return h3.cell_to_parent(vendor.home_cell, PEER_RES) if vendor.home_cell else EVERYONE


def peers_cache_key(*, group: str, today: date) -> str:
    # The database's name keeps apart the test databases that share one Redis.
    return f"insights:peers:{connection.settings_dict['NAME']}:{group}:{today.isoformat()}"


def _figures(*, group: str, today: date) -> GroupFigures:
    """Every cart of the group that sold in the window: amount, sales and busiest hour."""
    start, end = window(today=today)
    qs = SalesCube.objects.filter(day__gte=start, day__lte=end)
    if group != EVERYONE:
        homes = Vendor.objects.filter(status=Vendor.Status.APPROVED).values_list("pk", "home_cell")
        members = [pk for pk, cell in homes if cell and h3.cell_to_parent(cell, PEER_RES) == group]
        qs = qs.filter(vendor_id__in=members)
    rows = qs.values_list("vendor_id", "hour").annotate(amount=Sum("amount"), sales=Sum("sales"))
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    by_hour: dict[int, dict[int, int]] = defaultdict(dict)
    for vendor_id, hour, amount, sales in rows:
        totals[vendor_id][0] += amount
        totals[vendor_id][1] += sales
        by_hour[vendor_id][hour] = sales
    return {
        vid: (amount, sales, max(sorted(by_hour[vid]), key=lambda h: by_hour[vid][h]))
        for vid, (amount, sales) in totals.items()
        if sales > 0
    }


def group_figures(*, group: str, today: date) -> GroupFigures:
    key = peers_cache_key(group=group, today=today)
    figures = cache.get(key)
    if figures is None:
        figures = _figures(group=group, today=today)
        cache.set(key, figures, PEERS_CACHE_SECONDS)
    return figures


@dataclass(frozen=True)
class Comparison:
    enough: bool
    nearby: bool = True  # False: compared with every cart, too few near
    weekly: int = 0  # the vendor's average week
    weekly_median: int = 0
    weekly_top_quarter: int = 0
    basket: int = 0
    basket_median: int = 0
    best_hour: int | None = None
    peers_best_hour: int | None = None

    @property
    def standing(self) -> str:
        if self.weekly >= self.weekly_top_quarter:
            return "top"
        return "above" if self.weekly >= self.weekly_median else "below"


def _own(rows: Sequence[Row]) -> tuple[int, int, int | None]:
    amount = sum(r.amount for r in rows)
    sales = sum(r.sales for r in rows)
    by_hour: Counter[int] = Counter()
    for r in rows:
        by_hour[r.hour] += r.sales
    best = min((h for h, n in by_hour.items() if n == max(by_hour.values())), default=None)
    return amount, sales, best if sales > 0 else None


def peer_comparison(*, vendor: Vendor, today: date, own_rows: Sequence[Row]) -> Comparison:
    """The vendor's last four weeks (`own_rows`, insights.vendor.vendor_rows) against similar
    carts'. One query for the cached state when warm; two more when a group is computed."""
    group = peer_group(vendor)
    others = {k: v for k, v in group_figures(group=group, today=today).items() if k != vendor.pk}
    nearby = True
    if len(others) < settings.INSIGHT_MIN_PEERS and group != EVERYONE:
        nearby = False
        others = {
            k: v for k, v in group_figures(group=EVERYONE, today=today).items() if k != vendor.pk
        }
    if len(others) < settings.INSIGHT_MIN_PEERS:
        return Comparison(enough=False)
    amount, sales, best = _own(own_rows)
    weekly = sorted(a / WEEKS for a, _s, _h in others.values())
    baskets = [a / s for a, s, _h in others.values()]
    hours = Counter(h for _a, _s, h in others.values())
    top_hour = min(h for h, n in hours.items() if n == max(hours.values()))
    return Comparison(
        enough=True,
        nearby=nearby,
        weekly=round(amount / WEEKS),
        weekly_median=round(statistics.median(weekly)),
        weekly_top_quarter=round(statistics.quantiles(weekly, n=4)[2]),
        basket=round(amount / sales) if sales > 0 else 0,
        basket_median=round(statistics.median(baskets)),
        best_hour=best,
        peers_best_hour=top_hour,
    )


def peers_warm(*, today: date | None = None) -> int:
    """Compute every group's figures ahead of the pages (beat, every half hour, within the cache's
    hour): no vendor waits for a whole district's four weeks to be added up. Returns the groups."""
    from django.utils import timezone

    today = today or timezone.localdate()
    homes = Vendor.objects.filter(status=Vendor.Status.APPROVED).exclude(home_cell="")
    groups = {h3.cell_to_parent(c, PEER_RES) for c in homes.values_list("home_cell", flat=True)}
    for group in sorted(groups) + [EVERYONE]:
        figures = _figures(group=group, today=today)
        cache.set(peers_cache_key(group=group, today=today), figures, PEERS_CACHE_SECONDS)
    return len(groups) + 1
