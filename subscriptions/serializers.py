"""Input and output shapes of the subscriptions API (one pair per endpoint where it differs)."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Subscription, SubscriptionItem


class ItemInSerializer(serializers.Serializer):
    product_id = serializers.IntegerField()
    quantity = serializers.IntegerField()


class SubscriptionCreateInSerializer(serializers.Serializer):
    vendor = serializers.SlugField(help_text="The vendor's slug.")
    address_id = serializers.IntegerField()
    plan = serializers.CharField()
    items = ItemInSerializer(many=True)
    starts_on = serializers.DateField()
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        required=False,
        help_text="0 = Monday … 6 = Sunday; or every_n_days.",
    )
    every_n_days = serializers.IntegerField(required=False, allow_null=True)
    shortage_policy = serializers.ChoiceField(
        choices=Subscription.Shortage.choices, default=Subscription.Shortage.SUPPLY_WHAT_YOU_CAN
    )
    not_at_home_policy = serializers.ChoiceField(
        choices=Subscription.NotAtHome.choices, default=Subscription.NotAtHome.LEAVE_AT_DOOR
    )
    card_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="One of your saved cards (GET /api/payments/cards/); default: your default card.",
    )


class ChangeInSerializer(serializers.Serializer):
    """Send what changes: items (the whole new list), and/or weekdays or every_n_days."""

    items = ItemInSerializer(many=True, required=False)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False
    )
    every_n_days = serializers.IntegerField(required=False, allow_null=True)


class ChangeOutSerializer(serializers.Serializer):
    """Which upcoming deliveries (within four weeks) the change touches."""

    effective_from = serializers.DateField()
    added = serializers.ListField(child=serializers.DateField())
    removed = serializers.ListField(child=serializers.DateField())
    repriced = serializers.ListField(child=serializers.DateField())


class PauseInSerializer(serializers.Serializer):
    until = serializers.DateField(required=False, allow_null=True, default=None)


class SkipInSerializer(serializers.Serializer):
    date = serializers.DateField()


class PreferencesInSerializer(serializers.Serializer):
    shortage_policy = serializers.ChoiceField(choices=Subscription.Shortage.choices)
    not_at_home_policy = serializers.ChoiceField(choices=Subscription.NotAtHome.choices)
    wellbeing_check = serializers.BooleanField(default=False)
    contact_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    contact_email = serializers.EmailField(required=False, allow_blank=True, default="")
    consent = serializers.BooleanField(
        default=False,
        help_text="The subscriber agrees that the contact is told (required for the check)",
    )


class ItemOutSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="product.name")

    class Meta:
        model = SubscriptionItem
        fields = ["product_id", "name", "quantity", "unit_price"]


class UpcomingOutSerializer(serializers.Serializer):
    date = serializers.DateField()
    items = serializers.IntegerField(source="cost.items")
    discount = serializers.IntegerField(source="cost.discount")
    delivery_fee = serializers.IntegerField(source="cost.delivery_fee")
    total = serializers.IntegerField(source="cost.total")


class SubscriptionOutSerializer(serializers.ModelSerializer):
    vendor: serializers.SlugRelatedField[Subscription] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    items = ItemOutSerializer(many=True, read_only=True)
    weekdays = serializers.ListField(source="weekday_list", child=serializers.IntegerField())
    upcoming = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "vendor",
            "address_id",
            "plan",
            "status",
            "starts_on",
            "commitment_ends_on",
            "weekdays",
            "every_n_days",
            "anchor",
            "paused_from",
            "paused_until",
            "shortage_policy",
            "not_at_home_policy",
            "wellbeing_check",
            "wellbeing_contact_name",
            "wellbeing_contact_email",
            "cancellation_fee",
            "fee_status",
            "currency",
            "items",
            "upcoming",
            "created_at",
            "cancelled_at",
        ]

    @extend_schema_field(UpcomingOutSerializer(many=True))
    def get_upcoming(self, obj: Subscription) -> Any:
        return UpcomingOutSerializer(
            self.context.get("upcoming", {}).get(obj.pk, []), many=True
        ).data
