"""The parts of the customer's order in the API that say what happens next and why it ended: its
deadlines, its ending in words and, while it waits for payment, whether another card may be tried
(a declined card leaves the payment open until the window closes). Read by orders.selectors."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Order


class DeadlineOutSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=["pay_by", "accept_by", "collect_by", "window"],
        help_text="pay_by: the payment window closes (the order then ends, stock released); "
        "accept_by: the vendor must accept by then or the order expires; collect_by: the order "
        "waits at the pickup point until then; window: the time asked for (until `until`).",
    )
    at = serializers.DateTimeField()
    until = serializers.DateTimeField(allow_null=True)
    text = serializers.CharField(help_text="In words, in the request's language, in Korea time.")


class EndingOutSerializer(serializers.Serializer):
    code = serializers.ChoiceField(
        choices=[
            "payment_failed",
            "not_paid_in_time",
            "rejected_by_vendor",
            "not_accepted_in_time",
            "expired_by_staff",
            "cancelled_by_you",
            "cancelled_by_staff",
            "cancelled_by_vendor",
            "not_collected",
            "cancelled",
            "refunded",
        ]
    )
    by = serializers.ChoiceField(choices=["customer", "vendor", "staff", "system"])
    text = serializers.CharField(help_text="Why it ended, in words, in the request's language.")
    reason = serializers.CharField(help_text="What the vendor or staff wrote; may be empty.")


class PaymentStateOutSerializer(serializers.Serializer):
    can_pay = serializers.BooleanField(
        help_text="The payment window is open: (another) card may be tried at checkout_url."
    )
    pay_by = serializers.DateTimeField(allow_null=True)
    declined = serializers.BooleanField(help_text="The last card tried was declined.")
    decline_code = serializers.CharField(
        help_text="The provider's code (card_declined, insufficient_funds, authentication_failed"
        "…); empty when nothing was declined."
    )
    decline_text = serializers.CharField(help_text="Why, in words; empty when not declined.")
    card_last4 = serializers.CharField(help_text="The declined card's last digits, or empty.")
    checkout_url = serializers.URLField(
        allow_blank=True, help_text="The provider's card page, to pay or try another card."
    )


PROGRESS_FIELDS = ["deadlines", "ending", "payment"]


class OrderProgressOutMixin(serializers.Serializer):
    """Fields for the customer's order detail (order_of_customer prefetches its events)."""

    deadlines = serializers.SerializerMethodField(
        help_text="What is due next and by when; empty once nothing is."
    )
    ending = serializers.SerializerMethodField(
        help_text="Why the order ended without a handover (or was refunded); null otherwise."
    )
    payment = serializers.SerializerMethodField(
        help_text="While the order waits for payment: whether it may still be paid and why the "
        "last card was declined; null otherwise."
    )

    @extend_schema_field(DeadlineOutSerializer(many=True))
    def get_deadlines(self, order: Order) -> list[dict]:
        found = selectors.order_deadlines(order, now=timezone.now())
        return list(DeadlineOutSerializer(found, many=True).data)

    @extend_schema_field(EndingOutSerializer(allow_null=True))
    def get_ending(self, order: Order) -> dict | None:
        ending = selectors.order_ending(order)
        return EndingOutSerializer(ending).data if ending is not None else None

    @extend_schema_field(PaymentStateOutSerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict | None:
        state = selectors.order_payment_state(order)
        return PaymentStateOutSerializer(state).data if state is not None else None
