"""The pickup point's own API, for the point staff's phone app: the same as the point page
(partners.views.point), through the same selectors and service. Only a person with an active
point-staff role gets in; an order of another point is a 404."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.api import Pagination
from o2o.errors import Conflict, NotAllowed
from orders.models import Order
from orders.services import order_collect_at_point
from orders.services.transitions import CodeCheckUnavailable

from . import selectors
from .serializers import CollectInSerializer, PartnerOrderOutSerializer


class IsPointStaff(permissions.BasePermission):
    message = _("This is for the staff of a pickup point.")

    def has_permission(self, request, view) -> bool:
        return selectors.point_staff_of(user=request.user) is not None


class PointConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("This order is not waiting at the pickup point.")
    default_code = "conflict"


class PointUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Codes can't be checked for a moment. Try again in a few seconds.")
    default_code = "unavailable"


class _PointApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPointStaff]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed | Order.DoesNotExist):
            exc = NotFound(_("No such order at this pickup point."))
        elif isinstance(exc, Conflict):
            exc = PointConflict(exc.messages[0])
        elif isinstance(exc, CodeCheckUnavailable):
            exc = PointUnavailable(exc.messages[0])
        # Any other Django ValidationError (a wrong code): 400 with its fields.
        return super().handle_exception(exc)

    def point_id(self) -> int:
        staff = selectors.point_staff_of(user=self.request.user)
        assert staff is not None  # IsPointStaff
        return staff.pickup_point_id


class PointOrdersApi(_PointApi):
    # Documents the page object the view answers with (spectacular reads it).
    pagination_class = Pagination

    @extend_schema(responses=PartnerOrderOutSerializer(many=True), tags=["pickup point"])
    def get(self, request):
        """The orders waiting at my point, the soonest collect-by first (the point page's list)."""
        paginator = Pagination()
        orders = selectors.point_orders_waiting(point_id=self.point_id())
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(PartnerOrderOutSerializer(page, many=True).data)


class PointOrderCollectApi(_PointApi):
    @extend_schema(
        request=CollectInSerializer,
        responses={
            200: PartnerOrderOutSerializer,
            400: OpenApiResponse(description="A wrong code, or too many (`error.fields.code`)."),
            404: OpenApiResponse(description="No such order at this pickup point."),
            409: OpenApiResponse(description="The order is not waiting to be collected."),
            503: OpenApiResponse(description="Codes can't be checked for a moment."),
        },
        tags=["pickup point"],
    )
    def post(self, request, order_id: int):
        """The customer collects an order: send the code they show (the point page's
        "Hand over"). Too many wrong codes lock the order for a while."""
        body = CollectInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        point_id = self.point_id()
        order_collect_at_point(
            order_id=order_id,
            point_id=point_id,
            code=body.validated_data["code"],
            actor=request.user,
        )
        order = selectors.orders_at(point_ids=[point_id]).get(pk=order_id)
        return Response(PartnerOrderOutSerializer(order).data)
