"""Order API shapes: one input and one output serializer per endpoint. The handover code goes to
the customer only (while it is needed), never to the vendor, who must get it from the customer."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Fulfilment, Order, OrderEvent, OrderLine
from .progress_serializers import PROGRESS_FIELDS, OrderProgressOutMixin
from .qr import handover_url
from .receipts import OrderRefunds, order_refunds
from .selectors import CODE_SHOWN
from .services import handover_qr_shown

# --- output ---------------------------------------------------------------------------------------


class OrderLineOutSerializer(serializers.ModelSerializer):
    product_id = serializers.IntegerField()

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "product_id",
            "name_ko",
            "name_en",
            "unit_price",
            "quantity",
            "line_total",
            "short_quantity",
            "short_reason",
        ]


class OrderEventOutSerializer(serializers.ModelSerializer):
    # Plain strings (order statuses): the schema names the status choices once, on the order.
    from_status = serializers.CharField(help_text="The order's status before ('' at creation).")
    to_status = serializers.CharField(help_text="The order's status after.")

    class Meta:
        model = OrderEvent
        fields = ["from_status", "to_status", "role", "reason", "at"]


class PickupPointOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()


class _OrderBaseOutSerializer(serializers.ModelSerializer):
    vendor = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    vendor_name = serializers.CharField(source="vendor.name", read_only=True)
    lines = OrderLineOutSerializer(many=True, read_only=True)
    pickup_point = PickupPointOutSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "vendor",
            "vendor_name",
            "status",
            "fulfilment",
            "delivery_address",
            "pickup_point",
            "meet_cell",
            "window_start",
            "window_end",
            "eta",
            "note",
            "currency",
            "subtotal",
            "delivery_fee",
            "total",
            "reason",
            "lines",
            "created_at",
            "placed_at",
            "accepted_at",
            "handed_over_at",
            "completed_at",
        ]
        read_only_fields = fields


class OrderListOutSerializer(_OrderBaseOutSerializer):
    """A customer's order in a list: no events, no code."""


class VendorNearbyOutSerializer(serializers.Serializer):
    lat = serializers.FloatField(help_text="Snapped to a grid of `precision_m`, not exact.")
    lng = serializers.FloatField()
    precision_m = serializers.IntegerField()
    distance_m = serializers.IntegerField(help_text="From the meeting point, to 10 m.")
    meet = serializers.ListField(child=serializers.FloatField(), help_text="[lat, lng]")
    seen_at = serializers.DateTimeField()


class RefundOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="In the currency's minor unit (KRW has none).")
    currency = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["order", "line", "short", "dispute", "provider", "other"],
        help_text="order: the whole order; line: one line, by staff; short: units the vendor "
        "could not supply; dispute: after a problem report; provider: made at the payment "
        "provider; other.",
    )
    reason = serializers.CharField(
        source="what", help_text="The reason in words, in the request's language."
    )
    detail = serializers.CharField(
        help_text="What staff or the vendor wrote about it for the customer; may be empty."
    )
    status = serializers.ChoiceField(
        choices=["pending", "succeeded", "failed"],
        help_text="pending: sent, not made yet; succeeded: made; failed: refused by the provider "
        "(our team makes it again).",
    )
    status_label = serializers.CharField(help_text="The status in words.")
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    order_line_id = serializers.IntegerField(
        allow_null=True, help_text="The line given back (kinds line and short)."
    )


class OrderDetailOutSerializer(OrderProgressOutMixin, _OrderBaseOutSerializer):
    """The customer's own order, with its history, its refunds and, while it is needed, the
    handover code."""

    handover_code = serializers.SerializerMethodField()
    handover_qr_url = serializers.SerializerMethodField(
        help_text="The link to show as a QR code beside the handover code, for the vendor's phone "
        "to scan (signed; good for HANDOVER_QR_MAX_AGE seconds, so fetch the order again to "
        "renew it). Null when the vendor can't hand the order over now, or it is collected at a "
        "pickup point (whose staff type the code)."
    )
    events = OrderEventOutSerializer(many=True, read_only=True)
    vendor_nearby = serializers.SerializerMethodField(
        help_text="A meet order's vendor at street level, for its customer only, while accepted, "
        "on the way or arrived and within the last few hundred metres of the meeting point; "
        "null otherwise (and always after the handover). The order page gets the same live."
    )

    refunds = serializers.SerializerMethodField(
        help_text="Every refund of the order, oldest first, whatever its status."
    )
    refunded_total = serializers.SerializerMethodField(
        help_text="The refunds made (succeeded), in minor units."
    )
    net_total = serializers.SerializerMethodField(
        help_text="What the customer pays in the end, in minor units: once the money was taken, "
        "what was taken less the refunds made; before that, what will be taken (the total less "
        "units not supplied); 0 for an order that ended without taking any."
    )
    price_advantage = serializers.SerializerMethodField(
        help_text="A regular's delivery on a commitment plan: what the plan's price saved on the "
        "list price, in minor units (already taken off the lines' prices); 0 otherwise."
    )

    class Meta(_OrderBaseOutSerializer.Meta):
        fields = [
            *_OrderBaseOutSerializer.Meta.fields,
            "handover_code",
            "handover_qr_url",
            "events",
            "vendor_nearby",
            "refunds",
            "refunded_total",
            "net_total",
            "price_advantage",
            *PROGRESS_FIELDS,
        ]
        read_only_fields = fields

    def _money(self, order: Order) -> OrderRefunds:
        # One reading per order for the three fields.
        cache = self.context.setdefault("_order_refunds", {})
        if order.pk not in cache:
            cache[order.pk] = order_refunds(order=order)
        return cache[order.pk]

    @extend_schema_field(RefundOutSerializer(many=True))
    def get_refunds(self, order: Order) -> list[dict]:
        return RefundOutSerializer(self._money(order).refunds, many=True).data

    @extend_schema_field(serializers.IntegerField())
    def get_refunded_total(self, order: Order) -> int:
        return self._money(order).refunded_total

    @extend_schema_field(serializers.IntegerField())
    def get_net_total(self, order: Order) -> int:
        return self._money(order).net_total

    @extend_schema_field(serializers.IntegerField())
    def get_price_advantage(self, order: Order) -> int:
        return self._money(order).price_advantage

    def get_handover_code(self, order: Order) -> str | None:
        return order.handover_code if order.status in CODE_SHOWN else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_handover_qr_url(self, order: Order) -> str | None:
        request = self.context.get("request")
        if request is None or not handover_qr_shown(order):
            return None
        return handover_url(request, order)

    @extend_schema_field(VendorNearbyOutSerializer(allow_null=True))
    def get_vendor_nearby(self, order: Order) -> dict | None:
        request = self.context.get("request")
        if request is None or order.fulfilment != Fulfilment.MEET:
            return None
        if order.status not in selectors.NEARBY_SHOWN:
            return None
        return selectors.vendor_nearby(order_id=order.pk, user_id=request.user.pk)


class OrderPlaceOutSerializer(serializers.Serializer):
    order = OrderDetailOutSerializer()
    checkout_url = serializers.URLField(
        help_text="The payment provider's card page: send the customer there to pay."
    )


class StaffOrderOutSerializer(_OrderBaseOutSerializer):
    """An order as staff see it after acting on it: with its history, never the handover code."""

    events = OrderEventOutSerializer(many=True, read_only=True)

    class Meta(_OrderBaseOutSerializer.Meta):
        fields = [*_OrderBaseOutSerializer.Meta.fields, "events"]
        read_only_fields = fields


class VendorOrderOutSerializer(_OrderBaseOutSerializer):
    """An order as its vendor sees it: who ordered (name only), never the handover code; how it
    was paid (`card`, or `cash` at the cart)."""

    customer_name = serializers.CharField(source="customer.user.name", read_only=True)

    class Meta(_OrderBaseOutSerializer.Meta):
        fields = [*_OrderBaseOutSerializer.Meta.fields, "customer_name", "payment_method"]
        read_only_fields = fields


# --- input ----------------------------------------------------------------------------------------


class OrderLineInSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1, max_value=settings.ORDER_MAX_QUANTITY)


class CashSaleInSerializer(serializers.Serializer):
    client_id = serializers.UUIDField(
        help_text="A fresh UUID per sale, made before the first try: sending the same one again "
        "(a double tap, a retry after a lost answer) records one sale and gives it back (200)."
    )
    items = OrderLineInSerializer(
        many=True, allow_empty=False, max_length=settings.CASH_SALE_MAX_LINES
    )

    def validate_items(self, value):
        items: dict[int, int] = {}
        for line in value:
            items[line["product_id"]] = items.get(line["product_id"], 0) + line["quantity"]
        return items


class OrderPlaceInSerializer(serializers.Serializer):
    vendor = serializers.IntegerField(min_value=1, help_text="The vendor's id.")
    lines = OrderLineInSerializer(many=True, allow_empty=False, max_length=100)
    fulfilment = serializers.ChoiceField(
        choices=Fulfilment.choices,
        help_text="meet, delivery or pickup (at_cart is for sales at the cart, not this API).",
    )
    address_id = serializers.IntegerField(required=False, min_value=1)
    pickup_point_id = serializers.IntegerField(required=False, min_value=1)
    meet_cell = serializers.CharField(required=False, max_length=16, allow_blank=True)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    note = serializers.CharField(required=False, max_length=200, allow_blank=True)
    checkout_token = serializers.UUIDField(
        help_text="A fresh UUID per checkout: sending the same one again returns the same order."
    )
    expected_total = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Optional. The total the customer was shown and agreed to, in minor units: "
        "the items at the prices shown plus the delivery fee for delivery. When the total at "
        "current prices differs, nothing is placed and the answer is 409 `prices_changed` (its "
        "message gives the new total): show the new prices and ask again. Not checked when a "
        "checkout_token already placed an order (that order is returned).",
    )

    def validate_fulfilment(self, fulfilment: str) -> str:
        if fulfilment == Fulfilment.AT_CART:
            raise serializers.ValidationError(_("Choose meet, delivery or pickup."))
        return fulfilment

    def validate_lines(self, lines: list[dict]) -> list[dict]:
        ids = [line["product_id"] for line in lines]
        if len(ids) != len(set(ids)):
            raise serializers.ValidationError(_("Each product may appear only once."))
        return lines


class OrderCancelInSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=200, allow_blank=True)


class StaffOrderCancelInSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=200, help_text="Why: the customer and the vendor are told."
    )


class StaffLineRefundInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=180, help_text="Why the line is given back.")


class StaffLineRefundOutSerializer(serializers.Serializer):
    refund_id = serializers.IntegerField()
    amount = serializers.IntegerField()
    commission = serializers.IntegerField()
    status = serializers.CharField()


class OrderAcceptInSerializer(serializers.Serializer):
    eta_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)


class OrderRejectInSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class OrderLineShortInSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(
        min_value=1, help_text="How many more units of the line can't be supplied."
    )
    reason = serializers.CharField(max_length=200, help_text="Why; the customer sees it.")


class OrderHandOverInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=6)


class HandOverScanInSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=500,
        required=False,
        help_text="What the customer's hand-over QR code holds (its link), or the token alone.",
    )
    order = serializers.IntegerField(
        min_value=1, required=False, help_text="Typed instead: the order's number, with `code`."
    )
    code = serializers.CharField(
        max_length=6, required=False, help_text="Typed instead: the code the customer shows."
    )

    def validate(self, attrs):
        if not attrs.get("text") and not (attrs.get("order") and attrs.get("code")):
            raise serializers.ValidationError(
                _("Scan the customer's QR code, or type the order number and the code.")
            )
        return attrs


class VendorOrdersQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["active", "history"], default="active")
