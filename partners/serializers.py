"""Partner API shapes: one input and one output serializer per endpoint. An endpoint's secret is
shown once, in the answer that created (or rotated) it; an order shows its number and items, never
who ordered it."""

from rest_framework import serializers

from orders.models import Order, OrderLine

from .events import EVENT_TYPES
from .models import Delivery, DeliveryAttempt, Endpoint


class EndpointOutSerializer(serializers.ModelSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    previous_secret_until = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="While set and in the future, the previous secret signs deliveries too.",
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "partner",
            "partner_name",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "last_success_at",
            "previous_secret_until",
            "created_at",
        ]


class EndpointCreatedOutSerializer(EndpointOutSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="`whsec_<base64>`; shown this once: keep it."
    )

    class Meta(EndpointOutSerializer.Meta):
        fields = [*EndpointOutSerializer.Meta.fields, "secret"]


def _event_types(**kwargs):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)), max_length=64, **kwargs
    )


class EndpointCreateInSerializer(serializers.Serializer):
    partner = serializers.IntegerField(
        required=False, help_text="Which of your partners; needed only if you have several."
    )
    url = serializers.URLField(max_length=500)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = _event_types(allow_empty=False)


class EndpointUpdateInSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_types = _event_types(allow_empty=False, required=False)
    is_active = serializers.BooleanField(required=False)


class SecretOutSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new secret; shown this once.")
    previous_secret_until = serializers.DateTimeField(
        help_text="Until then deliveries carry a signature with the previous secret too."
    )


class DeliveryAttemptOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["started_at", "duration_ms", "status_code", "response_excerpt", "error", "ok"]


class DeliveryOutSerializer(serializers.ModelSerializer):
    event_id = serializers.CharField(source="event.event_id")
    type = serializers.CharField(source="event.type")
    attempt_log = DeliveryAttemptOutSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "type",
            "aggregate",
            "aggregate_id",
            "sequence",
            "status",
            "attempts",
            "last_status_code",
            "created_at",
            "finished_at",
            "attempt_log",
        ]


class DeliveriesQuerySerializer(serializers.Serializer):
    endpoint = serializers.IntegerField(required=False)
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)


class PartnerOrderLineOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["name_ko", "name_en", "quantity"]


class PartnerOrderOutSerializer(serializers.ModelSerializer):
    """What the point's staff need to find the bag: the number, the items, the hold's end."""

    number = serializers.SerializerMethodField()
    vendor_name = serializers.CharField(source="vendor.name")
    pickup_point = serializers.IntegerField(source="pickup_point_id")
    hold_until = serializers.DateTimeField(source="expires_at", allow_null=True)
    lines = PartnerOrderLineOutSerializer(many=True)

    class Meta:
        model = Order
        fields = ["id", "number", "status", "vendor_name", "pickup_point", "hold_until", "lines"]

    def get_number(self, order: Order) -> str:
        return f"#{order.pk}"


class CollectInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=12, help_text="The code the customer shows.")
