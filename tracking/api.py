"""Live-map API: nearby vendors (public), and for vendors: shift, ping batches, their own track."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from o2o.api import error_response
from vendors.api import IsVendor

from . import selectors, services
from .serializers import (
    NearbyOutSerializer,
    NearbyQuerySerializer,
    PingBatchInSerializer,
    PingBatchOutSerializer,
    ShiftInSerializer,
)


class NearbyApi(APIView):
    """Vendors on shift around a point, nearest first, by their public cell only."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[NearbyQuerySerializer],
        responses=NearbyOutSerializer,
    )
    def get(self, request):
        query = NearbyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"results": selectors.vendors_nearby(**query.validated_data)})


class PingBatchThrottle(UserRateThrottle):
    scope = "ping_batch"
    rate = "60/min"


class PingBatchApi(APIView):
    """Pings queued on the phone while the connection was down, sent as one batch on reconnect."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]
    throttle_classes = [PingBatchThrottle]

    @extend_schema(
        request=PingBatchInSerializer,
        responses={
            200: PingBatchOutSerializer,
            422: OpenApiResponse(
                PingBatchOutSerializer, description="Every ping refused: the reasons per ping."
            ),
        },
    )
    def post(self, request):
        body = PingBatchInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor_id = request.user.vendor.pk
        # Oldest first, so the newest ping ends up as the latest position; one transaction.
        pings = sorted(body.validated_data["pings"], key=_ts_key)
        recorded = services.ping_record_many(
            pings=[
                services.PingIn(
                    vendor_id=vendor_id,
                    lat=ping["lat"],
                    lng=ping["lng"],
                    accuracy_m=ping["accuracy"],
                    recorded_at=services.parse_timestamp(ping["ts"]),
                    source="batch",
                )
                for ping in pings
            ]
        )
        results = [
            {
                "ts": ping["ts"],
                "accepted": result.accepted,
                "reason": result.reason,
                "message": result.message,
            }
            for ping, result in zip(pings, recorded, strict=True)
        ]
        accepted = sum(r["accepted"] for r in results)
        duplicates = sum(r["reason"] == services.Reject.DUPLICATE for r in results)
        # All refused (and not merely already recorded): the batch as a whole is unprocessable.
        code = (
            status.HTTP_200_OK if accepted or duplicates else status.HTTP_422_UNPROCESSABLE_ENTITY
        )
        return Response(
            {"accepted": accepted, "rejected": len(results) - accepted, "results": results},
            status=code,
        )


def _ts_key(ping: dict):
    parsed = services.parse_timestamp(ping["ts"])
    return (parsed is None, parsed.timestamp() if parsed else 0.0)


class ShiftApi(APIView):
    """Go on or off shift."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(request=ShiftInSerializer, responses=ShiftInSerializer)
    def post(self, request):
        body = ShiftInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor = request.user.vendor
        try:
            if body.validated_data["on_shift"]:
                pos = services.shift_start(vendor=vendor, actor=request.user)
            else:
                pos = services.shift_end(vendor=vendor, actor=request.user)
        except DjangoValidationError as exc:
            return error_response("forbidden", exc.messages[0], status.HTTP_403_FORBIDDEN)
        return Response({"on_shift": pos.on_shift})


class OwnTrackApi(APIView):
    """The signed-in vendor's exact position and today's track (private to that vendor)."""

    permission_classes = [permissions.IsAuthenticated, IsVendor]

    @extend_schema(responses={200: dict})
    def get(self, request):
        vendor = request.user.vendor
        pos = getattr(vendor, "position", None) if hasattr(vendor, "position") else None
        return Response(
            {
                "on_shift": bool(pos and pos.on_shift),
                "presence": pos.presence if pos else "offline",
                "public_cell": pos.public_cell if pos else "",
                "position": {"lat": pos.lat, "lng": pos.lng, "accuracy_m": pos.accuracy_m}
                if pos and pos.lat is not None
                else None,
                "track": selectors.vendor_track_today(vendor=vendor),
            }
        )
