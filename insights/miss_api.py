"""POST /api/insights/misses/: the map's beacon when a visitor picks a product that no cart in
view has. Public (the map is), throttled per address and per account; the position sent is the
map's centre, kept only as its public cell."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from vendors.models import Product

from .misses import search_miss_record


class MissInSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    lat = serializers.FloatField(
        min_value=-90,
        max_value=90,
        error_messages={
            "min_value": _("Latitude must be between -90 and 90."),
            "max_value": _("Latitude must be between -90 and 90."),
        },
    )
    lng = serializers.FloatField(
        min_value=-180,
        max_value=180,
        error_messages={
            "min_value": _("Longitude must be between -180 and 180."),
            "max_value": _("Longitude must be between -180 and 180."),
        },
    )

    def validate_product_id(self, value: int) -> int:
        if not Product.objects.filter(pk=value, is_active=True).exists():
            raise serializers.ValidationError(_("No such product on sale."))
        return value


class MissOutSerializer(serializers.Serializer):
    recorded = serializers.BooleanField(
        help_text="Whether a new miss was recorded (false: a cart near has it, or already "
        "recorded this hour)."
    )


class MissAnonThrottle(AnonRateThrottle):
    scope = "insight_miss_anon"
    rate = "30/min"


class MissUserThrottle(UserRateThrottle):
    scope = "insight_miss_user"
    rate = "30/min"


class MissBeaconApi(APIView):
    """A product looked for on the map that no cart near has."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [MissAnonThrottle, MissUserThrottle]

    @extend_schema(
        operation_id="insights_miss_record",
        request=MissInSerializer,
        responses={
            202: MissOutSerializer,
            400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
            429: OpenApiResponse(description="Too many in a minute."),
        },
        tags=["insights"],
    )
    def post(self, request):
        body = MissInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        recorded = search_miss_record(
            request=request, product_id=data["product_id"], lat=data["lat"], lng=data["lng"]
        )
        return Response(
            MissOutSerializer({"recorded": recorded}).data, status=status.HTTP_202_ACCEPTED
        )
