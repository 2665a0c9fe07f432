"""Partner API: a partner's owner manages its webhook endpoints and reads their delivery log; a
pickup-point partner lists the orders waiting at its point and hands one over with the customer's
code. Thin: each endpoint validates its body, calls one service and shapes the answer. Someone
else's endpoint or order is a 404 (never 403: that would tell it exists); a hand-over from the
wrong state 409; a wrong code 400 (o2o.api error format)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.api import Pagination
from o2o.errors import Conflict, NotAllowed
from orders.services import order_collect_at_point

from . import selectors, services
from .models import Endpoint
from .serializers import (
    CollectInSerializer,
    DeliveriesQuerySerializer,
    DeliveryOutSerializer,
    EndpointCreatedOutSerializer,
    EndpointCreateInSerializer,
    EndpointOutSerializer,
    EndpointUpdateInSerializer,
    PartnerOrderOutSerializer,
    SecretOutSerializer,
)


class IsPartner(permissions.BasePermission):
    message = _("Only partners can use this. Ask us to register your business as a partner.")

    def has_permission(self, request, view) -> bool:
        return selectors.partners_of(user=request.user).exists()


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The order changed meanwhile.")
    default_code = "conflict"


ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
    404: OpenApiResponse(description="No such endpoint or order, or not yours."),
}


class _PartnerApi(APIView):
    permission_classes = [permissions.IsAuthenticated, IsPartner]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed | Endpoint.DoesNotExist):
            exc = NotFound(_("Not found."))
        elif isinstance(exc, Conflict):
            exc = ConflictError(exc.messages[0])
        # Any other Django ValidationError: 400 with its fields (o2o.api.exception_handler).
        return super().handle_exception(exc)

    def own_endpoint(self, endpoint_id: int) -> Endpoint:
        return selectors.endpoints_of(user=self.request.user).get(pk=endpoint_id)

    def paginated(self, queryset, serializer_class):
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


class EndpointsApi(_PartnerApi):
    # Documents the page object the view answers with (spectacular reads it; see paginated()).
    pagination_class = Pagination

    @extend_schema(responses=EndpointOutSerializer(many=True), tags=["partner"])
    def get(self, request):
        """Your webhook endpoints (secrets are never shown again)."""
        return self.paginated(selectors.endpoints_of(user=request.user), EndpointOutSerializer)

    @extend_schema(
        request=EndpointCreateInSerializer,
        responses={201: EndpointCreatedOutSerializer, **ERRORS},
        tags=["partner"],
    )
    def post(self, request):
        """Register an endpoint for some event types. The answer carries its signing secret, this
        once: verify each delivery with it (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
        `webhook-signature`)."""
        body = EndpointCreateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        partners = selectors.partners_of(user=request.user)
        if "partner" in data:
            partner = partners.filter(pk=data["partner"]).first()
            if partner is None:
                raise ApiValidationError({"partner": [_("You have no such partner.")]})
        else:
            mine = list(partners[:2])
            if len(mine) != 1:
                raise ApiValidationError({"partner": [_("Say which of your partners.")]})
            partner = mine[0]
        endpoint, secret = services.endpoint_create(
            partner=partner,
            url=data["url"],
            event_types=data["event_types"],
            description=data.get("description", ""),
        )
        return Response(EndpointCreatedOutSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDetailApi(_PartnerApi):
    @extend_schema(responses={200: EndpointOutSerializer, 404: ERRORS[404]}, tags=["partner"])
    def get(self, request, endpoint_id: int):
        return Response(EndpointOutSerializer(self.own_endpoint(endpoint_id)).data)

    @extend_schema(
        request=EndpointUpdateInSerializer,
        responses={200: EndpointOutSerializer, **ERRORS},
        tags=["partner"],
    )
    def patch(self, request, endpoint_id: int):
        """Change the URL, the description or the event types; `is_active: true` turns a disabled
        endpoint on again."""
        endpoint = self.own_endpoint(endpoint_id)
        body = EndpointUpdateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.endpoint_update(endpoint_id=endpoint.pk, **body.validated_data)
        return Response(EndpointOutSerializer(self.own_endpoint(endpoint_id)).data)

    @extend_schema(responses={204: None, 404: ERRORS[404]}, tags=["partner"])
    def delete(self, request, endpoint_id: int):
        services.endpoint_delete(endpoint_id=self.own_endpoint(endpoint_id).pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecretApi(_PartnerApi):
    @extend_schema(
        request=None, responses={200: SecretOutSerializer, 404: ERRORS[404]}, tags=["partner"]
    )
    def post(self, request, endpoint_id: int):
        """A new secret, shown this once. The previous one keeps signing beside it for a day, so
        deliveries carry two signatures meanwhile and either secret verifies them."""
        endpoint = self.own_endpoint(endpoint_id)
        secret = services.endpoint_rotate_secret(endpoint_id=endpoint.pk)
        endpoint.refresh_from_db()
        out = {"secret": secret, "previous_secret_until": endpoint.previous_secret_until}
        return Response(SecretOutSerializer(out).data)


class DeliveriesApi(_PartnerApi):
    # Documents the page object the view answers with (spectacular reads it; see paginated()).
    pagination_class = Pagination

    @extend_schema(
        parameters=[DeliveriesQuerySerializer],
        responses=DeliveryOutSerializer(many=True),
        tags=["partner"],
    )
    def get(self, request):
        """The delivery log of your endpoints, newest first, with every try."""
        query = DeliveriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = selectors.deliveries_of(user=request.user)
        if "endpoint" in query.validated_data:
            deliveries = deliveries.filter(endpoint_id=query.validated_data["endpoint"])
        if "status" in query.validated_data:
            deliveries = deliveries.filter(status=query.validated_data["status"])
        return self.paginated(deliveries, DeliveryOutSerializer)


# --- a pickup-point partner ---------------------------------------------------------------------


class PartnerOrdersApi(_PartnerApi):
    # Documents the page object the view answers with (spectacular reads it; see paginated()).
    pagination_class = Pagination

    @extend_schema(responses=PartnerOrderOutSerializer(many=True), tags=["partner"])
    def get(self, request):
        """Orders waiting for collection at your pickup point(s)."""
        points = selectors.pickup_point_ids_of(user=request.user)
        return self.paginated(
            selectors.orders_waiting_at(point_ids=points), PartnerOrderOutSerializer
        )


class PartnerOrderCollectApi(_PartnerApi):
    @extend_schema(
        request=CollectInSerializer,
        responses={
            200: PartnerOrderOutSerializer,
            **ERRORS,
            409: OpenApiResponse(description="The order is not waiting for collection."),
        },
        tags=["partner"],
    )
    def post(self, request, order_id: int):
        """The customer collects an order at your point: send the code they show. Too many wrong
        codes lock the order for a while."""
        body = CollectInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        points = selectors.pickup_point_ids_of(user=request.user)
        point_id = selectors.order_point(order_id=order_id, point_ids=points)
        if point_id is None:
            raise NotFound(_("No such order at your pickup point."))
        order_collect_at_point(
            order_id=order_id,
            point_id=point_id,
            code=body.validated_data["code"],
            actor=request.user,
        )
        order = selectors.orders_at(point_ids=points).get(pk=order_id)
        return Response(PartnerOrderOutSerializer(order).data)
