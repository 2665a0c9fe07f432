"""The vendor's insight over the API: every figure of the insight page (GET /api/insights/vendor/)
and what to load for a day (GET /api/insights/vendor/load/?date=YYYY-MM-DD). The signed-in vendor's
own only: there is no way to name another vendor."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from vendors.api import IsVendor

from .forecast import LoadPlan, load_plan
from .peers import peer_comparison
from .vendor import Area, Figures, Insight, vendor_insight

LOAD_DAYS_AHEAD = 7
WEEKDAY_CHOICES = ["all", *(str(d) for d in range(7))]


class InsightQuerySerializer(serializers.Serializer):
    weekday = serializers.ChoiceField(
        choices=WEEKDAY_CHOICES,
        required=False,
        default="all",
        help_text="The hours by product on one weekday (Monday 0) or every day (all)",
    )


class LoadQuerySerializer(serializers.Serializer):
    date = serializers.DateField(
        required=False,
        help_text="The day to load for, from today to a week ahead (default: tomorrow)",
    )

    def validate_date(self, value):
        today = timezone.localdate()
        if not today <= value <= today + timedelta(days=LOAD_DAYS_AHEAD):
            raise serializers.ValidationError(
                _("Choose a day from today to %(days)s days ahead.") % {"days": LOAD_DAYS_AHEAD}
            )
        return value


class FiguresSerializer(serializers.Serializer):
    units = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="KRW")
    sales = serializers.IntegerField(help_text="Sale lines")


class AreaSerializer(FiguresSerializer):
    cell = serializers.CharField(allow_null=True, help_text="H3 cell; null for the pooled rest")
    kind = serializers.ChoiceField(choices=["cell", "parent", "elsewhere"])
    label = serializers.CharField()
    place = serializers.CharField()
    buyers = serializers.IntegerField(help_text="Distinct customers (never fewer than the minimum)")
    boundary = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class HourRowSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    units = serializers.ListField(child=serializers.IntegerField(), help_text="Per hour in hours")


class HoursSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(allow_null=True)
    hours = serializers.ListField(child=serializers.IntegerField())
    products = HourRowSerializer(many=True)


class DaySerializer(serializers.Serializer):
    day = serializers.DateField()
    this = FiguresSerializer(allow_null=True)
    last = FiguresSerializer()


class ChangeSerializer(serializers.Serializer):
    units = serializers.IntegerField(allow_null=True, help_text="Percent; null: nothing before")
    sales = serializers.IntegerField(allow_null=True)
    amount = serializers.IntegerField(allow_null=True)


class WeeksSerializer(serializers.Serializer):
    this_start = serializers.DateField()
    today = serializers.DateField()
    this = FiguresSerializer()
    last = FiguresSerializer()
    change = ChangeSerializer()
    days = DaySerializer(many=True)


class ChannelSerializer(FiguresSerializer):
    channel = serializers.CharField()
    label = serializers.CharField()
    share = serializers.IntegerField(help_text="Percent of the amount")


class PeersSerializer(serializers.Serializer):
    enough = serializers.BooleanField()
    nearby = serializers.BooleanField()
    weekly = serializers.IntegerField()
    weekly_median = serializers.IntegerField()
    weekly_top_quarter = serializers.IntegerField()
    basket = serializers.IntegerField()
    basket_median = serializers.IntegerField()
    best_hour = serializers.IntegerField(allow_null=True)
    peers_best_hour = serializers.IntegerField(allow_null=True)


class OptionSerializer(serializers.Serializer):
    extra = serializers.IntegerField()
    load = serializers.IntegerField()
    waste = serializers.FloatField(help_text="Units expected left unsold")


class LoadLineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    regulars = serializers.IntegerField()
    ordered = serializers.IntegerField()
    usual = serializers.FloatField()
    history = serializers.ListField(child=serializers.IntegerField())
    suggested = serializers.IntegerField()
    on_cart = serializers.IntegerField()
    to_load = serializers.IntegerField()
    options = OptionSerializer(many=True)


class LoadSerializer(serializers.Serializer):
    day = serializers.DateField()
    weeks = serializers.IntegerField(help_text="Past same weekdays in the history")
    lines = LoadLineSerializer(many=True)


class InsightSerializer(serializers.Serializer):
    vendor_id = serializers.IntegerField()
    as_of = serializers.DateTimeField(allow_null=True)
    start = serializers.DateField()
    end = serializers.DateField()
    total = FiguresSerializer()
    areas = AreaSerializer(many=True)
    hidden_areas = serializers.IntegerField()
    min_buyers = serializers.IntegerField()
    hours = HoursSerializer()
    weeks = WeeksSerializer()
    channels = ChannelSerializer(many=True)
    peers = PeersSerializer()
    load = LoadSerializer()


def figures_out(f: Figures) -> dict:
    return {"units": f.units, "amount": f.amount, "sales": f.sales}


def area_out(a: Area) -> dict:
    return {
        "cell": a.key or None,
        "kind": a.kind,
        "label": a.label,
        "place": a.place,
        "buyers": a.buyers,
        "boundary": [list(p) for p in a.boundary],
        **figures_out(a.figures),
    }


def load_out(plan: LoadPlan) -> dict:
    return {
        "day": plan.day.isoformat(),
        "weeks": plan.weeks,
        "lines": [
            {
                "product_id": line.product_id,
                "name": line.name,
                "regulars": line.suggestion.regulars,
                "ordered": line.suggestion.ordered,
                "usual": round(line.suggestion.usual, 2),
                "history": list(line.suggestion.history),
                "suggested": line.suggestion.suggested,
                "on_cart": line.on_cart,
                "to_load": line.to_load,
                "options": [
                    {"extra": o.extra, "load": o.load, "waste": round(o.waste, 2)}
                    for o in line.suggestion.options
                ],
            }
            for line in plan.lines
        ],
    }


def insight_out(insight: Insight, peers: dict, load: dict) -> dict:
    when, weeks = insight.when, insight.weeks
    return {
        "vendor_id": insight.vendor.pk,
        "as_of": insight.as_of.isoformat() if insight.as_of else None,
        "start": insight.start.isoformat(),
        "end": insight.today.isoformat(),
        "total": figures_out(insight.total),
        "areas": [area_out(a) for a in insight.where.areas],
        "hidden_areas": insight.where.hidden,
        "min_buyers": insight.where.min_buyers,
        "hours": {
            "weekday": when.weekday,
            "hours": when.hours,
            "products": [{"product_id": p, "name": n, "units": u} for p, n, u in when.grid],
        },
        "weeks": {
            "this_start": weeks.this_start.isoformat(),
            "today": weeks.today.isoformat(),
            "this": figures_out(weeks.this),
            "last": figures_out(weeks.last),
            "change": weeks.changes(),
            "days": [
                {
                    "day": day.isoformat(),
                    "this": figures_out(now) if now else None,
                    "last": figures_out(last),
                }
                for day, now, last in weeks.days
            ],
        },
        "channels": [
            {"channel": c.channel, "label": c.label, "share": c.share, **figures_out(c.figures)}
            for c in insight.channels
        ],
        "peers": peers,
        "load": load,
    }


class VendorInsightApi(APIView):
    """The signed-in vendor's insight over the last four weeks, under the minimum-count rule
    (an area shown has at least `min_buyers` distinct customers)."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(
        operation_id="insights_vendor_get",
        parameters=[InsightQuerySerializer],
        responses=InsightSerializer,
        tags=["vendor insight"],
    )
    def get(self, request):
        query = InsightQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        raw = query.validated_data["weekday"]
        vendor, today = request.user.vendor, timezone.localdate()
        insight = vendor_insight(
            vendor=vendor, today=today, weekday=None if raw == "all" else int(raw)
        )
        comparison = peer_comparison(vendor=vendor, today=today, own_rows=insight.rows)
        peers = {name: getattr(comparison, name) for name in PeersSerializer().fields}
        load = load_out(load_plan(vendor=vendor, day=today + timedelta(days=1)))
        return Response(insight_out(insight, peers, load))


class VendorLoadApi(APIView):
    """What to load on the cart for a day: regulars due, the usual demand of that weekday, the
    suggested load and the units likely left unsold at it, 2 and 5 more."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(
        operation_id="insights_vendor_load_get",
        parameters=[LoadQuerySerializer],
        responses=LoadSerializer,
        tags=["vendor insight"],
    )
    def get(self, request):
        query = LoadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        day = query.validated_data.get("date") or timezone.localdate() + timedelta(days=1)
        return Response(load_out(load_plan(vendor=request.user.vendor, day=day)))
