"""Favourite carts for native apps: list (with where each cart roughly is now: its public cell
only), add, remove, "tell me when it is near" on or off, and what the customer usually buys on
today's weekday. Thin: one service or selector per endpoint; someone else's favourite is simply
not found (each customer sees and changes only their own)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from o2o.api import Pagination
from o2o.errors import NotAllowed
from tracking.selectors import public_states
from vendors.models import Vendor

from .models import FavouriteVendor
from .selectors import favourites_of, usual_for_today
from .services import (
    customer_profile_get_or_create,
    favourite_add,
    favourite_notify_set,
    favourite_remove,
)

TAGS = ["favourites"]
NOT_FOUND = OpenApiResponse(description="No such cart, or not among your favourites.")


class FavouriteVendorOutSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField(help_text="The cart's page.")


class WhereOutSerializer(serializers.Serializer):
    """Where the cart roughly is: its public H3 cell (about 350 m across), never a position."""

    cell = serializers.CharField()
    centre = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    boundary = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    presence = serializers.CharField()
    last_seen = serializers.DateTimeField(allow_null=True)


class FavouriteOutSerializer(serializers.Serializer):
    vendor = FavouriteVendorOutSerializer()
    notify_near = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    on_shift = serializers.BooleanField(help_text="On the map now.")
    where = WhereOutSerializer(allow_null=True, help_text="Null while the cart is off the map.")


class FavouriteAddInSerializer(serializers.Serializer):
    vendor = serializers.SlugField(help_text="The cart's slug (its id on the map).")


class FavouriteUpdateInSerializer(serializers.Serializer):
    notify_near = serializers.BooleanField(
        help_text="Tell me (by e-mail, at most once per shift) when this cart is near one of my "
        "saved addresses."
    )


class UsualOutSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    product_name = serializers.CharField()
    weeks = serializers.IntegerField(
        help_text="Of the last 6 same weekdays, how many it was bought."
    )
    quantity = serializers.IntegerField(help_text="In the latest of those orders.")
    vendor = serializers.CharField(source="vendor_slug")
    vendor_name = serializers.CharField()
    order_id = serializers.IntegerField(help_text="POST /api/orders/<id>/reorder/ repeats it.")
    message = serializers.CharField(source="sentence")


class UsualListOutSerializer(serializers.Serializer):
    results = UsualOutSerializer(many=True)


def _out(favourite: FavouriteVendor, where: dict | None) -> dict:
    vendor = favourite.vendor
    return {
        "vendor": {"slug": vendor.slug, "name": vendor.name, "url": vendor_url(vendor)},
        "notify_near": favourite.notify_near,
        "created_at": favourite.created_at,
        "on_shift": where is not None,
        "where": None
        if where is None
        else {k: where[k] for k in ("cell", "centre", "boundary", "presence", "last_seen")},
    }


def vendor_url(vendor: Vendor) -> str:
    from django.urls import reverse

    return reverse("vendors:detail", args=[vendor.slug])


class _FavouritesApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed | FavouriteVendor.DoesNotExist | Vendor.DoesNotExist):
            exc = exceptions.NotFound(_("No such cart among your favourites."))
        return super().handle_exception(exc)

    def customer(self):
        return customer_profile_get_or_create(user=self.request.user)

    def vendor(self, slug: str) -> Vendor:
        return Vendor.objects.get(slug=slug, status=Vendor.Status.APPROVED)

    def one(self, favourite: FavouriteVendor) -> dict:
        where = public_states(vendor_ids=[favourite.vendor_id]).get(favourite.vendor_id)
        return FavouriteOutSerializer(_out(favourite, where)).data


class FavouritesApi(_FavouritesApi):
    """The signed-in customer's favourite carts, newest first, and adding one."""

    pagination_class = Pagination

    @extend_schema(
        operation_id="favourites_list",
        responses=FavouriteOutSerializer(many=True),
        tags=TAGS,
    )
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(favourites_of(customer=self.customer()), request, self)
        where = public_states(vendor_ids=[f.vendor_id for f in page])
        data = FavouriteOutSerializer([_out(f, where.get(f.vendor_id)) for f in page], many=True)
        return paginator.get_paginated_response(data.data)

    @extend_schema(
        operation_id="favourites_add",
        request=FavouriteAddInSerializer,
        responses={201: FavouriteOutSerializer, 404: NOT_FOUND},
        tags=TAGS,
    )
    def post(self, request):
        """Keep a cart among the favourites (adding it again changes nothing)."""
        body = FavouriteAddInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vendor = self.vendor(body.validated_data["vendor"])
        favourite = favourite_add(customer=self.customer(), vendor_id=vendor.pk)
        return Response(self.one(favourite), status=status.HTTP_201_CREATED)


class FavouriteDetailApi(_FavouritesApi):
    def own(self, slug: str) -> FavouriteVendor:
        return FavouriteVendor.objects.select_related("vendor").get(
            customer=self.customer(), vendor__slug=slug, vendor__status=Vendor.Status.APPROVED
        )

    @extend_schema(
        operation_id="favourite_get",
        responses={200: FavouriteOutSerializer, 404: NOT_FOUND},
        tags=TAGS,
    )
    def get(self, request, slug: str):
        return Response(self.one(self.own(slug)))

    @extend_schema(
        operation_id="favourite_update",
        request=FavouriteUpdateInSerializer,
        responses={200: FavouriteOutSerializer, 404: NOT_FOUND},
        tags=TAGS,
    )
    def patch(self, request, slug: str):
        """Turn "tell me when it is near" on or off."""
        body = FavouriteUpdateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        favourite = favourite_notify_set(
            customer=self.customer(),
            vendor_id=self.vendor(slug).pk,
            notify_near=body.validated_data["notify_near"],
        )
        return Response(self.one(favourite))

    @extend_schema(
        operation_id="favourite_remove",
        request=None,
        responses={204: None, 404: NOT_FOUND},
        tags=TAGS,
    )
    def delete(self, request, slug: str):
        """No longer a favourite (its near e-mails stop too)."""
        if not favourite_remove(customer=self.customer(), vendor_id=self.vendor(slug).pk):
            raise exceptions.NotFound(_("No such cart among your favourites."))
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsualApi(_FavouritesApi):
    @extend_schema(operation_id="usual_list", responses=UsualListOutSerializer, tags=TAGS)
    def get(self, request):
        """What the customer usually buys on today's weekday (Korea time): products bought on it
        in at least 2 of the last 6 same weekdays, from their own received orders."""
        usual = usual_for_today(self.customer(), timezone.now())
        return Response(UsualListOutSerializer({"results": usual}).data)
