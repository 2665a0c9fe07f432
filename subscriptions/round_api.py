"""The vendor's round over the API (the round page's script uses it; so can a native app): the
day's stops in route order, a batch of taps made offline (each with the phone's own id, each
answered on its own so one bad tap never blocks the queue behind it), and tomorrow's round."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.errors import NotAllowed
from vendors.api import IsVendor

from .models import RoundAction
from .round import Round, Tap, Tomorrow, round_act, round_next, round_of

MAX_TAPS = 100  # per request: the page sends its queue in batches of this many


class RoundQuerySerializer(serializers.Serializer):
    day = serializers.DateField(required=False, help_text="The round's day (default today)")
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)

    def validate(self, attrs):
        if ("lat" in attrs) != ("lng" in attrs):
            raise serializers.ValidationError("Give both lat and lng, or neither.")
        today = timezone.localdate()
        day = attrs.get("day", today)
        if abs((day - today).days) > 7:
            raise serializers.ValidationError({"day": "Within a week of today."})
        return attrs


class TapSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Made on the phone: a replay with it acts once")
    order_id = serializers.IntegerField(min_value=1)
    action = serializers.ChoiceField(choices=RoundAction.Action.choices)
    tapped_at = serializers.DateTimeField(required=False)
    code = serializers.CharField(required=False, allow_blank=True, max_length=8, default="")
    wellbeing = serializers.ChoiceField(
        choices=[("", ""), ("well", "well"), ("concern", "concern")], required=False, default=""
    )
    uncollected = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class TapsInSerializer(serializers.Serializer):
    actions = serializers.ListField(
        child=serializers.DictField(), max_length=MAX_TAPS, help_text="Taps (TapSerializer)"
    )


class LineOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class StopOutSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    address = serializers.CharField()
    distance_m = serializers.IntegerField(help_text="From the stop before (the first: the vendor)")
    lines = LineOutSerializer(many=True)
    note = serializers.CharField()
    regular = serializers.BooleanField()
    not_at_home = serializers.CharField(help_text="The customer's choice; blank for a one-off")
    wellbeing_check = serializers.BooleanField()
    needs_code = serializers.BooleanField()
    status = serializers.CharField()
    window_end = serializers.DateTimeField(allow_null=True)


class TapOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    order_id = serializers.IntegerField(required=False)
    outcome = serializers.ChoiceField(choices=RoundAction.Outcome.choices, required=False)
    outcome_label = serializers.CharField(required=False)
    applied = serializers.BooleanField(required=False)
    detail = serializers.CharField(required=False)
    tapped_at = serializers.DateTimeField(required=False)
    error = serializers.DictField(required=False, help_text="This tap was not taken: why")


class TapsOutSerializer(serializers.Serializer):
    results = TapOutSerializer(many=True)


class RoundOutSerializer(serializers.Serializer):
    day = serializers.DateField()
    from_position = serializers.BooleanField()
    stops = StopOutSerializer(many=True)
    done = TapOutSerializer(many=True)
    items = LineOutSerializer(many=True)


class LoadOutSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    regulars = serializers.IntegerField()
    orders = serializers.IntegerField()
    needed = serializers.IntegerField()
    on_cart = serializers.IntegerField()
    to_load = serializers.IntegerField()


class TomorrowOutSerializer(serializers.Serializer):
    day = serializers.DateField()
    regulars = serializers.IntegerField()
    orders = serializers.IntegerField()
    load = LoadOutSerializer(many=True)


def _stops_out(result: Round) -> dict:
    return {
        "day": result.day.isoformat(),
        "from_position": result.start is not None,
        "stops": [
            {
                "order_id": s.order_id,
                "address": s.address,
                "distance_m": s.distance_m,
                "lines": [{"name": name, "quantity": qty} for name, qty in s.lines],
                "note": s.note,
                "regular": s.subscription_id is not None,
                "not_at_home": s.not_at_home,
                "wellbeing_check": s.wellbeing,
                "needs_code": s.needs_code,
                "status": s.status,
                "window_end": s.window_end.isoformat() if s.window_end else None,
            }
            for s in result.stops
        ],
        "done": [tap_out(a) for a in result.done],
        "items": [{"name": name, "quantity": qty} for name, qty in sorted(result.items.items())],
    }


def tap_out(action: RoundAction) -> dict:
    return {
        "id": str(action.client_id),
        "order_id": action.order_id,
        "outcome": action.outcome,
        "outcome_label": str(RoundAction.Outcome(action.outcome).label),
        "applied": action.applied,
        "detail": action.detail,
        "tapped_at": action.tapped_at.isoformat(),
    }


class RoundApi(APIView):
    """The signed-in vendor's round: stops left in route order (from `lat`,`lng` when given, else
    from the vendor's latest position), and the taps already settled."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(
        parameters=[RoundQuerySerializer], tags=["vendor round"], responses=RoundOutSerializer
    )
    def get(self, request):
        query = RoundQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        start = (data["lat"], data["lng"]) if "lat" in data else None
        result = round_of(
            vendor=request.user.vendor,
            day=data.get("day", timezone.localdate()),
            start=start,
            language=get_language() or "ko",
        )
        return Response(_stops_out(result))


class RoundActionsApi(APIView):
    """Taps made on the phone (offline ones replayed): each answered on its own, in order. A tap
    already seen (same id) answers as it did the first time; a stop another phone settled first
    answers "superseded" with what that was."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(request=TapsInSerializer, responses=TapsOutSerializer, tags=["vendor round"])
    def post(self, request):
        body = TapsInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor = request.user.vendor
        results = []
        for raw in body.validated_data["actions"]:
            tap_in = TapSerializer(data=raw)
            if not tap_in.is_valid():
                results.append({"id": str(raw.get("id", "")), "error": tap_in.errors})
                continue
            data = tap_in.validated_data
            tap = Tap(
                client_id=data["id"],
                order_id=data["order_id"],
                action=data["action"],
                tapped_at=data.get("tapped_at"),
                code=data["code"],
                wellbeing=data["wellbeing"],
                uncollected=data["uncollected"],
                note=data["note"],
            )
            try:
                results.append(tap_out(round_act(vendor=vendor, tap=tap)))
            except NotAllowed as exc:
                results.append({"id": str(tap.client_id), "error": {"detail": [str(exc)]}})
            except ValidationError as exc:
                errors = (
                    exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
                )
                results.append({"id": str(tap.client_id), "error": errors})
        return Response({"results": results})


class RoundTomorrowApi(APIView):
    """The next day's round: regulars due, orders placed for it, and what to load per product."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(tags=["vendor round"], responses=TomorrowOutSerializer)
    def get(self, request):
        day = timezone.localdate() + timedelta(days=1)
        return Response(tomorrow_out(round_next(vendor=request.user.vendor, day=day)))


def tomorrow_out(result: Tomorrow) -> dict:
    return {
        "day": result.day.isoformat(),
        "regulars": result.regulars,
        "orders": result.orders,
        "load": [
            {
                "product_id": load.product_id,
                "name": load.name,
                "regulars": load.regulars,
                "orders": load.orders,
                "needed": load.needed,
                "on_cart": load.on_cart,
                "to_load": load.to_load,
            }
            for load in result.loads
        ],
    }
