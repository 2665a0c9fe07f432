"""What to load on the cart for a day: the regulars due that day (certain), plus what walk-ups and
online orders usually take on that weekday, at a level that covers most days (the 80th
percentile), and what loading more would likely leave unsold.

The demand of a past day is its sold units outside the regular round (SalesCube: online, walk-up
QR, cash). The last eight same weekdays make the history; a day with no sale counts as a demand of
0 only if the vendor sold something that week (they worked, nobody bought), and is left out
otherwise (the cart was off: the day says nothing of the demand).

Expected waste is the newsvendor's expected overage: loading q for a demand D, E[max(q − D, 0)]
over the empirical distribution of the history; it never falls as q grows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Sum
from django.utils.translation import get_language

from subscriptions.round import round_next
from vendors.models import Stock, Vendor

from .models import Channel, SalesCube
from .vendor import product_names

HISTORY_WEEKS = 8
SERVICE_LEVEL = 0.8  # load enough for four days in five
EXTRAS = (0, 2, 5)  # the loads whose waste the page shows: suggested, +2, +5


def quantile(values: Sequence[int], level: float) -> int:
    """The nearest-rank quantile (the smallest value at least `level` of the values are at or
    below); 0 for no values."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(level * len(ordered)) - 1)]


def expected_waste(*, load: int, demand: Sequence[int]) -> float:
    """E[max(load − D, 0)] over the demands seen (0 when none was seen)."""
    if not demand:
        return 0.0
    return sum(max(load - d, 0) for d in demand) / len(demand)


@dataclass(frozen=True)
class Option:
    extra: int  # units above the suggestion
    load: int
    waste: float  # units expected left unsold


@dataclass(frozen=True)
class Suggestion:
    regulars: int  # due on the round: certain
    ordered: int  # already ordered for the day, outside the round: certain
    usual: float  # mean walk-up and online demand on that weekday
    history: tuple[int, ...]
    suggested: int
    options: tuple[Option, ...]


def suggest_load(
    *,
    history: Sequence[int],
    regulars: int = 0,
    ordered: int = 0,
    level: float = SERVICE_LEVEL,
    extras: Sequence[int] = EXTRAS,
) -> Suggestion:
    """Regulars plus the `level` quantile of the day's other demand (at least what is already
    ordered), and the expected waste of that load and of `extras` more."""
    demand = [max(d, ordered) for d in history]
    walk = max(quantile(demand, level), ordered)
    suggested = regulars + walk
    options = tuple(
        Option(extra, suggested + extra, expected_waste(load=walk + extra, demand=demand))
        for extra in extras
    )
    usual = sum(history) / len(history) if history else 0.0
    return Suggestion(regulars, ordered, usual, tuple(history), suggested, options)


def demand_history(
    *, vendor_id: int, day: date, weeks: int = HISTORY_WEEKS
) -> dict[int, list[int]]:
    """Per product, the units sold outside the round on each of the last `weeks` days of `day`'s
    weekday on which the vendor worked that week (oldest first): two queries."""
    days = [day - timedelta(days=7 * i) for i in range(weeks, 0, -1)]
    first_monday = days[0] - timedelta(days=days[0].weekday())
    sold = (
        SalesCube.objects.filter(vendor_id=vendor_id, day__gte=first_monday, day__lt=day)
        .values_list("day", flat=True)
        .distinct()
    )
    active_weeks = {d - timedelta(days=d.weekday()) for d in sold}
    counted = [d for d in days if d - timedelta(days=d.weekday()) in active_weeks]
    units: dict[tuple[int, date], int] = defaultdict(int)
    rows = (
        SalesCube.objects.filter(vendor_id=vendor_id, weekday=day.weekday(), day__in=counted)
        .exclude(channel=Channel.REGULAR)
        .values_list("product_id", "day")
        .annotate(n=Sum("units"))
    )
    for product_id, on, n in rows:
        units[(product_id, on)] += n
    products = {p for p, _d in units}
    return {p: [max(units.get((p, d), 0), 0) for d in counted] for p in sorted(products)}


@dataclass
class LoadLine:
    product_id: int
    name: str
    suggestion: Suggestion
    on_cart: int

    @property
    def to_load(self) -> int:
        return max(0, self.suggestion.suggested - self.on_cart)


@dataclass
class LoadPlan:
    day: date
    lines: list[LoadLine] = field(default_factory=list)
    weeks: int = 0  # past same weekdays the history holds


def load_plan(*, vendor: Vendor, day: date) -> LoadPlan:
    """For each product the vendor sells or has due: regulars due on `day` (the round's own
    reckoning: subscriptions active, not paused or skipped) plus the usual demand; what is on the
    cart now; how many more to load."""
    history = demand_history(vendor_id=vendor.pk, day=day)
    round_day = round_next(vendor=vendor, day=day, language=get_language() or "ko")
    due = {load.product_id: load for load in round_day.loads}
    ids = set(history) | set(due)
    on_cart = dict(
        Stock.objects.filter(vendor=vendor, product_id__in=ids).values_list(
            "product_id", "quantity"
        )
    )
    names = {pid: load.name for pid, load in due.items()}
    missing = ids - set(names)
    if missing:
        names.update(product_names(product_ids=missing))
    lines = []
    for pid in ids:
        load = due.get(pid)
        suggestion = suggest_load(
            history=history.get(pid, []),
            regulars=load.regulars if load else 0,
            ordered=load.orders if load else 0,
        )
        if suggestion.suggested > 0:
            lines.append(LoadLine(pid, names.get(pid, str(pid)), suggestion, on_cart.get(pid, 0)))
    lines.sort(key=lambda line: (-line.suggestion.suggested, line.name))
    weeks = max((len(h) for h in history.values()), default=0)
    return LoadPlan(day=day, lines=lines, weeks=weeks)
