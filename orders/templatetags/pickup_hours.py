"""{% load pickup_hours %}{{ point|opening_hours }}: a pickup point's opening hours in a few words
("Every day 07:00–22:00", "Mon–Fri 08:00–20:00, Sat 09:00–13:00"), in the active language."""

from itertools import groupby

from django import template
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.formats import time_format
from django.utils.translation import gettext as _

from vendors.models import PickupPoint

register = template.Library()


@register.filter
def opening_hours(point: PickupPoint | None) -> str:
    if point is None:
        return ""
    # Days with the same hours, in week order (the point's hours are prefetched or one query).
    by_day: dict[int, list[str]] = {}
    for h in sorted(point.hours.all(), key=lambda h: (h.weekday, h.opens)):
        span = f"{time_format(h.opens, 'H:i')}–{time_format(h.closes, 'H:i')}"
        by_day.setdefault(h.weekday, []).append(span)
    if not by_day:
        return ""
    days = sorted(by_day)
    if days == list(range(7)) and len({tuple(v) for v in by_day.values()}) == 1:
        return _("Every day %(hours)s") % {"hours": ", ".join(by_day[0])}
    parts: list[str] = []
    # Runs of consecutive days with the same hours.
    runs = groupby(enumerate(days), key=lambda p: (p[1] - p[0], tuple(by_day[p[1]])))
    for (_offset, spans), run in runs:
        run_days = [d for _i, d in run]
        first, last = WEEKDAYS_ABBR[run_days[0]], WEEKDAYS_ABBR[run_days[-1]]
        label = first if first == last else f"{first}–{last}"
        parts.append(f"{label} {', '.join(spans)}")
    return ", ".join(parts)
