"""The staff demand page (/insights/demand/): where people buy, what they looked for and did not
find, where carts work, and where a new vendor would sell, on a map and in a table. Staff with
the permission to read the sales summaries only; in the Django admin's look, linked from the
admin index and the money dashboard."""

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from .staff import BANDS, PERIODS, Demand, demand_areas

PERMISSION = "insights.view_salescube"


def may_read_demand(user) -> bool:
    return bool(
        user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION)
    )


def demand_staff_only(view):
    """Signed out: the admin's login. Signed in without the right: no such page (404)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not may_read_demand(request.user):
            raise Http404(_("No such page."))
        return view(request, *args, **kwargs)

    return wrapped


class DemandForm(forms.Form):
    days = forms.TypedChoiceField(
        label=gettext_lazy("Period"),
        coerce=int,
        choices=[(d, gettext_lazy("Last %(days)s days") % {"days": d}) for d in PERIODS],
        required=False,
    )
    band = forms.ChoiceField(
        label=gettext_lazy("Hours"),
        choices=[(key, label) for key, (label, _start, _end) in BANDS.items()],
        required=False,
    )
    metric = forms.ChoiceField(
        label=gettext_lazy("Colour the map by"),
        choices=[
            ("amount", gettext_lazy("Sales")),
            ("misses", gettext_lazy("Misses")),
            ("carts", gettext_lazy("Carts")),
        ],
        required=False,
    )

    @classmethod
    def defaults(cls) -> dict[str, str]:
        return {"days": "28", "band": "all", "metric": "amount"}

    def clean(self) -> dict:
        data = super().clean()
        data["days"] = data.get("days") or 28
        data["band"] = data.get("band") or "all"
        data["metric"] = data.get("metric") or "amount"
        return data


def geojson(demand: Demand) -> dict:
    """The areas as GeoJSON polygons ([lng, lat], closed rings), coarser areas first so the finer
    ones inside them are drawn on top."""
    features = []
    for a in sorted((a for a in demand.areas if a.cell), key=lambda a: a.res):
        ring = [[lng, lat] for lat, lng in a.boundary]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {
                    "cell": a.cell,
                    "units": a.units,
                    "amount": a.amount,
                    "buyers": a.buyers,
                    "misses": a.misses,
                    "carts": a.carts,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


@demand_staff_only
@require_GET
def demand_page(request: HttpRequest) -> HttpResponse:
    form = DemandForm(request.GET or DemandForm.defaults())
    context = {**admin.site.each_context(request), "title": _("Demand over the city"), "form": form}
    if not form.is_valid():
        return render(request, "insights/demand.html", context, status=400)
    data = form.cleaned_data
    demand = demand_areas(days=data["days"], band=data["band"])
    context.update(
        {
            "demand": demand,
            "band_label": BANDS[demand.band][0],
            "metric": data["metric"],
            "areas_geojson": geojson(demand),
            "map_config": {
                "tiles": settings.MAP_TILE_URL,
                "attribution": settings.MAP_TILE_ATTRIBUTION,
                "metric": data["metric"],
            },
            "min_buyers": settings.INSIGHT_MIN_BUYERS,
        }
    )
    return render(request, "insights/demand.html", context)
