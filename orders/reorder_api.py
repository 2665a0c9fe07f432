"""The one-tap "Order again" API: a received order as the cart can give it now (orders.reorder).
Nothing is placed or reserved here; the page (orders.reorder_views) and this API share the plan."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from .api import ERRORS, ConflictError, _OrderApi
from .reorder import reorder_plan


class ReorderLineOutSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Adjusted to the units sellable now.")
    unit_price = serializers.IntegerField(help_text="Today's price (minor units).")
    line_total = serializers.IntegerField()


class ReorderChangeOutSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["fewer", "sold_out", "price", "way", "address", "pickup_point"]
    )
    product_id = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class ReorderReceiveOutSerializer(serializers.Serializer):
    fulfilment = serializers.CharField()
    address_id = serializers.IntegerField(allow_null=True)
    pickup_point_id = serializers.IntegerField(allow_null=True)
    note = serializers.CharField(allow_blank=True)


class ReorderOutSerializer(serializers.Serializer):
    vendor = serializers.IntegerField(source="vendor.pk", help_text="For POST /api/orders/.")
    vendor_slug = serializers.CharField(source="vendor.slug")
    lines = ReorderLineOutSerializer(many=True)
    subtotal = serializers.IntegerField()
    currency = serializers.CharField()
    changes = ReorderChangeOutSerializer(many=True)
    receive = ReorderReceiveOutSerializer(source="choices")
    message = serializers.CharField(source="summary", help_text="The changes, in one sentence.")


class OrderReorderApi(_OrderApi):
    @extend_schema(
        operation_id="order_reorder",
        request=None,
        responses={
            200: ReorderOutSerializer,
            404: ERRORS[404],
            409: OpenApiResponse(
                description="`conflict`: the order was not received; `cannot_reorder`: the "
                "vendor can't take it now (not selling, off shift without hours) or nothing of "
                "it is left. The message says which."
            ),
        },
        tags=["orders"],
    )
    def post(self, request, order_id: int):
        """A received order again, as the cart can give it now: the basket to send to
        POST /api/orders/ (fewer units where fewer are sellable, products gone dropped, today's
        prices), last time's way to receive it, and every change in words. Nothing is placed or
        reserved here."""
        plan = reorder_plan(customer=self.customer(), order_id=order_id)
        if plan.refusal:
            raise ConflictError(plan.refusal, code="cannot_reorder")
        return Response(ReorderOutSerializer(plan).data)
