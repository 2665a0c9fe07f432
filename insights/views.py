"""The vendor's insight page, /insights/: where and when they sell, this week against last, by
which channel, against similar carts, and what to load tomorrow. Only the vendor sees it (staff may
look at any vendor's with ?vendor=<id>); anybody else gets a 404, as if there were nothing here."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from vendors.models import Vendor

from . import charts
from .forecast import load_plan
from .peers import peer_comparison
from .vendor import vendor_insight

WEEKDAYS = range(7)


def insight_vendor(request: HttpRequest) -> Vendor:
    """The vendor whose insight the request may see: its own, or (staff) the one named by
    ?vendor=<id>. Anybody else: 404."""
    own = getattr(request.user, "vendor", None)
    named = request.GET.get("vendor")
    if named is not None and request.user.is_staff:
        if not named.isdigit():
            raise Http404(_("No such vendor."))
        vendor = Vendor.objects.filter(pk=int(named)).first()
        if vendor is None:
            raise Http404(_("No such vendor."))
        return vendor
    if own is None:
        raise Http404(_("Only a vendor has an insight page."))
    return own


def parse_weekday(raw: str | None) -> int | None:
    """ "all" (or nothing) → None; "0".."6" (Monday 0) → that weekday; anything else: ValueError."""
    if raw in (None, "", "all"):
        return None
    if raw.isdigit() and int(raw) in WEEKDAYS:
        return int(raw)
    raise ValueError(raw)


@login_required
@require_GET
def vendor_page(request: HttpRequest) -> HttpResponse:
    vendor = insight_vendor(request)
    error, status = "", 200
    try:
        weekday = parse_weekday(request.GET.get("weekday"))
    except ValueError:
        weekday, status = None, 400
        error = _("Choose a day of the week from the list.")
    today = timezone.localdate()
    insight = vendor_insight(vendor=vendor, today=today, weekday=weekday)
    monday = today - timedelta(days=today.weekday())
    context = {
        "vendor": vendor,
        "is_own": getattr(request.user, "vendor", None) == vendor,
        "insight": insight,
        "error": error,
        "weekday": weekday,
        "weekdays": [(d, date_format(monday + timedelta(days=d), "l")) for d in WEEKDAYS],
        "staff_vendor": vendor.pk if request.GET.get("vendor") else None,
    }
    if not insight.empty:
        context.update(
            map_svg=charts.heat_map(insight.where) if insight.where.mapped else "",
            map_legend=charts.legend(
                max((a.figures.amount for a in insight.where.mapped), default=0)
            ),
            hours_svg=charts.hour_grid(insight.when) if insight.when.products else "",
            hours_legend=charts.legend(insight.when.peak, money=False),
            weeks_svg=charts.week_bars(insight.weeks),
            peers=peer_comparison(vendor=vendor, today=today, own_rows=insight.rows),
        )
    context["load"] = load_plan(vendor=vendor, day=today + timedelta(days=1))
    return render(request, "insights/vendor.html", context, status=status)
