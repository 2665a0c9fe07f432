"""Customer API, for native apps: the signed-in customer's saved addresses (the ones an order's
`address_id` names). Thin: each endpoint validates its body and calls the same service the
checkout page uses. Someone else's address is a 404, never a 403."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.errors import NotAllowed

from .address_selectors import address_of, addresses_of
from .address_services import address_delete, address_update
from .models import Address
from .serializers import AddressCreateInSerializer, AddressOutSerializer, AddressUpdateInSerializer
from .services import address_create, customer_profile_get_or_create

ERRORS = {
    400: OpenApiResponse(description="Invalid input: `error.fields` names what to fix."),
    404: OpenApiResponse(description="No such address, or not yours."),
}


class _AddressApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed | Address.DoesNotExist):
            exc = NotFound(_("No such address."))
        # Any other Django ValidationError: 400 with its fields (o2o.api.exception_handler).
        return super().handle_exception(exc)

    def customer(self):
        return getattr(self.request.user, "customer", None)


class AddressesApi(_AddressApi):
    """The signed-in customer's addresses (the default first), and saving a new one."""

    @extend_schema(responses=AddressOutSerializer(many=True), tags=["addresses"])
    def get(self, request):
        rows = addresses_of(customer=self.customer())
        return Response(AddressOutSerializer(rows, many=True).data)

    @extend_schema(
        request=AddressCreateInSerializer,
        responses={201: AddressOutSerializer, 400: ERRORS[400]},
        tags=["addresses"],
    )
    def post(self, request):
        """Save an address. The first one becomes the default; `is_default` takes the default
        from the one that had it."""
        body = AddressCreateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = customer_profile_get_or_create(user=request.user)
        address = address_create(customer=customer, **body.validated_data)
        return Response(AddressOutSerializer(address).data, status=status.HTTP_201_CREATED)


class AddressDetailApi(_AddressApi):
    @extend_schema(responses={200: AddressOutSerializer, 404: ERRORS[404]}, tags=["addresses"])
    def get(self, request, address_id: int):
        address = address_of(customer=self.customer(), address_id=address_id)
        return Response(AddressOutSerializer(address).data)

    @extend_schema(
        request=AddressUpdateInSerializer,
        responses={200: AddressOutSerializer, **ERRORS},
        tags=["addresses"],
    )
    def patch(self, request, address_id: int):
        """Change the fields sent. Orders already placed keep the address they were sent to."""
        body = AddressUpdateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        address = address_of(customer=self.customer(), address_id=address_id)
        address = address_update(
            customer=address.customer, address_id=address.pk, **body.validated_data
        )
        return Response(AddressOutSerializer(address).data)

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="Deleted."), 404: ERRORS[404]},
        tags=["addresses"],
    )
    def delete(self, request, address_id: int):
        """Delete an address; if it was the default, the newest one left becomes the default."""
        address = address_of(customer=self.customer(), address_id=address_id)
        address_delete(customer=address.customer, address_id=address.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
