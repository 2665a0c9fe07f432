"""Subscriptions API, for native apps: the same services as the pages. Someone else's
subscription is a 404, never a 403; a rule refused, or a state that no longer allows it, is a 400 with its message."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.services import customer_profile_get_or_create
from o2o.errors import NotAllowed
from vendors.models import Vendor

from . import selectors, services
from .models import Subscription, WellbeingRequest
from .serializers import (
    ChangeInSerializer,
    ChangeOutSerializer,
    PauseInSerializer,
    PreferencesInSerializer,
    SkipInSerializer,
    SubscriptionCreateInSerializer,
    SubscriptionOutSerializer,
)
from .wellbeing import wellbeing_request_answer, wellbeing_request_for, wellbeing_request_make

ERRORS = {
    400: OpenApiResponse(description="Invalid input or a rule refused it: the message says why."),
    404: OpenApiResponse(description="No such subscription, or not yours."),
}


def out(subscription: Subscription, status_code: int = 200) -> Response:
    upcoming = {subscription.pk: selectors.upcoming_deliveries(subscription=subscription)}
    data = dict(SubscriptionOutSerializer(subscription, context={"upcoming": upcoming}).data)
    # What cancelling today would cost (0 once cancelled): shown before the customer confirms.
    live = subscription.status != Subscription.Status.CANCELLED
    data["cancellation_fee_quote"] = (
        selectors.cancellation_fee_quote(subscription=subscription) if live else 0
    )
    return Response(data, status=status_code)


class _SubscriptionApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def handle_exception(self, exc):
        if isinstance(exc, NotAllowed):
            exc = NotFound(_("No such subscription."))
        return super().handle_exception(exc)

    def customer(self):
        return getattr(self.request.user, "customer", None)

    def own(self, subscription_id: int) -> Subscription:
        return selectors.subscription_of(customer=self.customer(), subscription_id=subscription_id)


class SubscriptionsApi(_SubscriptionApi):
    @extend_schema(responses=SubscriptionOutSerializer(many=True), tags=["subscriptions"])
    def get(self, request):
        """Mine, newest first, each with its next deliveries and what each will cost."""
        rows = list(selectors.subscriptions_of(customer=self.customer()))
        upcoming = selectors.upcoming_deliveries_of(subscriptions=rows)
        return Response(
            SubscriptionOutSerializer(rows, many=True, context={"upcoming": upcoming}).data
        )

    @extend_schema(
        request=SubscriptionCreateInSerializer,
        responses={201: SubscriptionOutSerializer, 400: ERRORS[400]},
        tags=["subscriptions"],
    )
    def post(self, request):
        body = SubscriptionCreateInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        vendor = get_object_or_404(Vendor, slug=data["vendor"])
        customer = customer_profile_get_or_create(user=request.user)
        subscription = services.subscription_create(
            customer=customer,
            vendor=vendor,
            address_id=data["address_id"],
            plan=data["plan"],
            items=[services.ItemIn(**item) for item in data["items"]],
            starts_on=data["starts_on"],
            weekdays=data.get("weekdays") or None,
            every_n_days=data.get("every_n_days"),
            shortage_policy=data["shortage_policy"],
            not_at_home_policy=data["not_at_home_policy"],
            card_id=data.get("card_id") or selectors.default_card_id(customer=customer),
        )
        return out(self.own(subscription.pk), status.HTTP_201_CREATED)


class SubscriptionDetailApi(_SubscriptionApi):
    @extend_schema(
        responses={200: SubscriptionOutSerializer, 404: ERRORS[404]}, tags=["subscriptions"]
    )
    def get(self, request, subscription_id: int):
        return out(self.own(subscription_id))

    @extend_schema(
        request=ChangeInSerializer,
        responses={200: SubscriptionOutSerializer, **ERRORS},
        tags=["subscriptions"],
    )
    def patch(self, request, subscription_id: int):
        """Change items, quantities or days from the next day not yet ordered; `change` in the
        answer lists the upcoming days added, removed or repriced."""
        body = ChangeInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        mine = self.own(subscription_id)
        items = data.get("items")
        change = services.subscription_change(
            subscription_id=mine.pk,
            customer=mine.customer,
            items=[services.ItemIn(**item) for item in items] if items is not None else None,
            weekdays=data.get("weekdays") or None,
            every_n_days=data.get("every_n_days"),
        )
        response = out(self.own(subscription_id))
        response.data["change"] = ChangeOutSerializer(change).data
        return response


class SubscriptionPauseApi(_SubscriptionApi):
    @extend_schema(
        request=PauseInSerializer,
        responses={200: SubscriptionOutSerializer, **ERRORS},
        tags=["subscriptions"],
    )
    def post(self, request, subscription_id: int):
        """Pause from today until `until` (the first day delivered again; null: until resumed)."""
        body = PauseInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mine = self.own(subscription_id)
        services.subscription_pause(
            subscription_id=mine.pk, customer=mine.customer, until=body.validated_data["until"]
        )
        return out(self.own(subscription_id))


class SubscriptionResumeApi(_SubscriptionApi):
    @extend_schema(
        request=None, responses={200: SubscriptionOutSerializer, **ERRORS}, tags=["subscriptions"]
    )
    def post(self, request, subscription_id: int):
        mine = self.own(subscription_id)
        services.subscription_resume(subscription_id=mine.pk, customer=mine.customer)
        return out(self.own(subscription_id))


class SubscriptionSkipApi(_SubscriptionApi):
    @extend_schema(
        request=SkipInSerializer,
        responses={200: SubscriptionOutSerializer, **ERRORS},
        tags=["subscriptions"],
    )
    def post(self, request, subscription_id: int):
        """Skip one future delivery day (idempotent)."""
        body = SkipInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        mine = self.own(subscription_id)
        services.subscription_skip(
            subscription_id=mine.pk, customer=mine.customer, on=body.validated_data["date"]
        )
        return out(self.own(subscription_id))


class SubscriptionCancelApi(_SubscriptionApi):
    @extend_schema(
        request=None, responses={200: SubscriptionOutSerializer, **ERRORS}, tags=["subscriptions"]
    )
    def post(self, request, subscription_id: int):
        """Cancel now; `cancellation_fee` is the fee recorded (the detail's
        `cancellation_fee_quote` shows it beforehand)."""
        mine = self.own(subscription_id)
        services.subscription_cancel(subscription_id=mine.pk, customer=mine.customer)
        return out(self.own(subscription_id))


class SubscriptionPreferencesApi(_SubscriptionApi):
    @extend_schema(
        request=PreferencesInSerializer,
        responses={200: SubscriptionOutSerializer, **ERRORS},
        tags=["subscriptions"],
    )
    def post(self, request, subscription_id: int):
        """What happens at the door (short stock, nobody at home) and the wellbeing check."""
        body = PreferencesInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        mine = self.own(subscription_id)
        services.subscription_preferences_set(
            subscription_id=mine.pk,
            customer=mine.customer,
            shortage_policy=data["shortage_policy"],
            not_at_home_policy=data["not_at_home_policy"],
            wellbeing_check=data["wellbeing_check"],
            contact_name=data["contact_name"],
            contact_email=data["contact_email"],
            consent=data["consent"],
        )
        return out(self.own(subscription_id))


# --- the wellbeing check asked for by someone close to a subscriber (subscriptions.wellbeing) ---


class WellbeingAskInSerializer(serializers.Serializer):
    subscriber_email = serializers.EmailField()
    requester_name = serializers.CharField(max_length=100)
    requester_email = serializers.EmailField()
    relation = serializers.ChoiceField(choices=WellbeingRequest.Relation.choices)
    message = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class WellbeingAnswerInSerializer(serializers.Serializer):
    agree = serializers.BooleanField()
    subscription_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Needed to agree."
    )


class WellbeingRequestOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = WellbeingRequest
        fields = [
            "token",
            "requester_name",
            "requester_email",
            "relation",
            "message",
            "status",
            "subscription_id",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


ASKED = _(
    "If they receive regular deliveries with us, we have asked them. Nothing starts without their "
    "agreement; you will hear from us by e-mail if they agree."
)


class WellbeingAskApi(APIView):
    """Anyone may ask (signed in or not); the answer never says whether the address is a
    subscriber's."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        request=WellbeingAskInSerializer,
        responses={202: OpenApiResponse(description="Asked, if there is anyone to ask."), **ERRORS},
        tags=["subscriptions"],
        operation_id="wellbeing_request_ask",
    )
    def post(self, request):
        body = WellbeingAskInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wellbeing_request_make(**body.validated_data)
        return Response({"detail": str(ASKED)}, status=status.HTTP_202_ACCEPTED)


class WellbeingAnswerApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def mine(self, token):
        customer = getattr(self.request.user, "customer", None)
        try:
            if customer is None:
                raise NotAllowed(_("No such request."))
            return customer, wellbeing_request_for(token=token, customer=customer)
        except NotAllowed as exc:
            raise NotFound(_("No such request.")) from exc

    @extend_schema(
        responses={200: WellbeingRequestOutSerializer, **ERRORS},
        tags=["subscriptions"],
        operation_id="wellbeing_request_get",
    )
    def get(self, request, token):
        _customer, ask = self.mine(token)
        return Response(WellbeingRequestOutSerializer(ask).data)

    @extend_schema(
        request=WellbeingAnswerInSerializer,
        responses={200: WellbeingRequestOutSerializer, **ERRORS},
        tags=["subscriptions"],
        operation_id="wellbeing_request_answer",
    )
    def post(self, request, token):
        """The subscriber's yes (for one of their subscriptions) or no, once."""
        body = WellbeingAnswerInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer, _ask = self.mine(token)
        ask = wellbeing_request_answer(
            token=token,
            customer=customer,
            agree=body.validated_data["agree"],
            subscription_id=body.validated_data["subscription_id"],
        )
        return Response(WellbeingRequestOutSerializer(ask).data)
