"""The address form's search box: places by name from the configured geocoder (O2O_GEOCODER)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from .geocoding import MAX_QUERY_LENGTH, GeocoderUnavailable, geocode, geocoder_enabled


class GeocodeQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=MAX_QUERY_LENGTH, trim_whitespace=True)


class PlaceSerializer(serializers.Serializer):
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label


class GeocodeOutSerializer(serializers.Serializer):
    results = PlaceSerializer(many=True)


class GeocodeThrottle(UserRateThrottle):
    scope = "geocode"
    rate = "30/min"


class GeocoderOff(exceptions.NotFound):
    default_detail = _("No address search here: place the pin on the map.")
    default_code = "no_geocoder"


class GeocoderDown(exceptions.APIException):
    status_code = 503
    default_detail = _("The address search is not answering. Place the pin on the map.")
    default_code = "unavailable"


class GeocodeApi(APIView):
    """Places matching an address typed by a logged-in customer (at most five)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [GeocodeThrottle]

    @extend_schema(parameters=[GeocodeQuerySerializer], responses=GeocodeOutSerializer)
    def get(self, request):
        if not geocoder_enabled():
            raise GeocoderOff
        query = GeocodeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            places = geocode(query.validated_data["q"])
        except GeocoderUnavailable:
            raise GeocoderDown from None
        return Response(GeocodeOutSerializer({"results": places}).data)
