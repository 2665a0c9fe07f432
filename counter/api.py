"""The cart's counter for native apps: the same services as the pages (counter.views).

- POST /api/counter/orders/ (anyone): a walk-up order from a scanned cart code (`cart_code`, the
  token in the cart's QR, as fresh as the QR: COUNTER_QR_MAX_AGE) and chosen items, or from a
  basket code; answers with the order and the provider's card page to pay on. A guest gets the
  order's own link (`order_url`) to follow it; an app signed in as a customer buys as them.
- POST /api/counter/baskets/ (the vendor, on shift): a basket's code and link for the buyer to scan.
"""

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from insights.misses import sold_out_record
from orders.services import order_payment_start
from vendors.services import OutOfStock

from .services import MAX_LINES, MAX_QUANTITY, counter_vendor, walkup_order_place
from .tokens import basket_token_make, basket_token_read, cart_token_read
from .views import order_link

ERRORS = {
    400: OpenApiResponse(
        description="Invalid input, a forged or expired code, or a rule refused it."
    ),
}


class LineSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class WalkupOrderInSerializer(serializers.Serializer):
    cart_code = serializers.CharField(
        required=False, max_length=600, help_text="From the cart's QR."
    )
    basket_code = serializers.CharField(
        required=False, max_length=600, help_text="From a basket's QR (then no items)."
    )
    items = LineSerializer(many=True, required=False, max_length=MAX_LINES)
    checkout_token = serializers.UUIDField(required=False, help_text="A double send: one order.")
    receipt_email = serializers.EmailField(required=False, allow_blank=True, default="")
    return_url = serializers.URLField(
        required=False, help_text="Where the card page sends the buyer back (default: the order)."
    )

    def validate(self, attrs):
        if bool(attrs.get("cart_code")) == bool(attrs.get("basket_code")):
            raise ValidationError("Give either cart_code (with items) or basket_code.")
        if attrs.get("cart_code") and not attrs.get("items"):
            raise ValidationError({"items": "Choose at least one product."})
        return attrs


class WalkupOrderOutSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    currency = serializers.CharField()
    pay_url = serializers.URLField(help_text="The provider's card page.")
    order_url = serializers.URLField(help_text="The order's own link (a guest's way back to it).")


class WalkupOrdersApi(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=WalkupOrderInSerializer,
        responses={201: WalkupOrderOutSerializer, **ERRORS},
        tags=["counter"],
    )
    def post(self, request):
        body = WalkupOrderInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("basket_code"):
            basket = basket_token_read(data["basket_code"])
            vendor_id, items, token = basket.vendor_id, basket.items, basket.checkout_token
        else:
            vendor_id = cart_token_read(data["cart_code"])
            items = {}
            for line in data["items"]:
                items[line["product_id"]] = items.get(line["product_id"], 0) + line["quantity"]
            token = data.get("checkout_token") or uuid.uuid4()
        customer = (
            getattr(request.user, "customer", None) if request.user.is_authenticated else None
        )
        try:
            order = walkup_order_place(
                vendor_id=vendor_id,
                items=items,
                checkout_token=token,
                customer=customer,
                receipt_email=data.get("receipt_email", ""),
                shared=bool(data.get("basket_code")),
            )
        except OutOfStock as exc:
            sold_out_record(request=request, exc=exc)  # the sale rolled back; the miss stays
            raise
        order_url = request.build_absolute_uri(order_link(order))
        pay_url = order_payment_start(
            order_id=order.pk, return_url=data.get("return_url") or order_url + "?back=1"
        )
        out = {
            "order_id": order.pk,
            "status": order.status,
            "total": order.total,
            "currency": order.currency,
            "pay_url": pay_url,
            "order_url": order_url,
        }
        return Response(WalkupOrderOutSerializer(out).data, status=status.HTTP_201_CREATED)


class BasketInSerializer(serializers.Serializer):
    items = LineSerializer(many=True, min_length=1, max_length=MAX_LINES)


class BasketOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    url = serializers.URLField()


class VendorBasketsApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=BasketInSerializer, responses={201: BasketOutSerializer, **ERRORS}, tags=["counter"]
    )
    def post(self, request):
        vendor = getattr(request.user, "vendor", None)
        if vendor is None:
            raise NotFound("Only vendors make baskets.")
        body = BasketInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        counter_vendor(vendor_id=vendor.pk)
        items: dict[int, int] = {}
        for line in body.validated_data["items"]:
            items[line["product_id"]] = items.get(line["product_id"], 0) + line["quantity"]
        code = basket_token_make(vendor_id=vendor.pk, items=items)
        basket_token_read(code)  # the code we hand out is one we read back
        url = request.build_absolute_uri(reverse("counter:basket", args=[code]))
        return Response({"code": code, "url": url}, status=status.HTTP_201_CREATED)
