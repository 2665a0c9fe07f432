"""Factories for the subscriptions app: a vendor that works Mon-Fri, delivers to MAPO, and a
customer with an address there."""

import uuid
from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone
from factory.django import DjangoModelFactory

from o2o.geo import cell_of
from payments.models import SavedCard
from subscriptions.models import (
    Delivery,
    RoundAction,
    Subscription,
    SubscriptionItem,
    SubscriptionSkip,
    WellbeingFlag,
    WellbeingRequest,
)
from subscriptions.selectors import add_months
from tests.factories import (
    MAPO,
    AddressFactory,
    CustomerProfileFactory,
    ProductFactory,
    ServiceCellFactory,
    StockFactory,
    VendorFactory,
    VendorHoursFactory,
)


def working_vendor(weekdays=range(5), **kwargs):
    """A vendor with hours on `weekdays` (Mon-Fri) whose area holds the factories' address."""
    vendor = VendorFactory(**kwargs)
    for day in weekdays:
        VendorHoursFactory(vendor=vendor, weekday=day)
    ServiceCellFactory(vendor=vendor, cell=cell_of(*MAPO, res=settings.SERVICE_AREA_RES))
    return vendor


def stocked(vendor, price=1200, **kwargs):
    return StockFactory(vendor=vendor, product=ProductFactory(price=price, **kwargs)).product


class SavedCardFactory(DjangoModelFactory):
    """A saved card as the vault keeps it (no provider behind it: for tests that never charge)."""

    class Meta:
        model = SavedCard

    customer = factory.SubFactory(CustomerProfileFactory)
    provider = "sandbox"
    provider_customer_ref = factory.Sequence(lambda n: f"cus_test_{n}")
    payment_method_ref = factory.Sequence(lambda n: f"pm_test_{n}")
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2039
    # The customer's first active card is their default (one default, by constraint).
    is_default = factory.LazyAttribute(
        lambda o: (
            not SavedCard.objects.filter(
                customer=o.customer, is_default=True, status=SavedCard.Status.ACTIVE
            ).exists()
        )
    )


class SubscriptionFactory(DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerProfileFactory)
    vendor = factory.LazyFunction(working_vendor)
    address = factory.LazyAttribute(lambda o: AddressFactory(customer=o.customer))
    plan = "anytime"
    plan_months = factory.LazyAttribute(lambda o: settings.SUBSCRIPTION_PLANS[o.plan]["months"])
    discount_bps = factory.LazyAttribute(
        lambda o: settings.SUBSCRIPTION_PLANS[o.plan]["discount_bps"]
    )
    cancel_fee_bps = factory.LazyAttribute(
        lambda o: settings.SUBSCRIPTION_PLANS[o.plan]["cancel_fee_bps"]
    )
    starts_on = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=1))
    commitment_ends_on = factory.LazyAttribute(
        lambda o: add_months(o.starts_on, o.plan_months) if o.plan_months else None
    )
    schedule_from = factory.LazyAttribute(lambda o: o.starts_on)
    weekdays = 0b11111


class SubscriptionItemFactory(DjangoModelFactory):
    class Meta:
        model = SubscriptionItem

    subscription = factory.SubFactory(SubscriptionFactory)
    product = factory.LazyAttribute(lambda o: stocked(o.subscription.vendor))
    quantity = 1
    unit_price = factory.LazyAttribute(lambda o: o.product.price)


class SubscriptionSkipFactory(DjangoModelFactory):
    class Meta:
        model = SubscriptionSkip

    subscription = factory.SubFactory(SubscriptionFactory)
    date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=2))


class DeliveryFactory(DjangoModelFactory):
    class Meta:
        model = Delivery

    subscription = factory.SubFactory(SubscriptionFactory)
    date = factory.LazyFunction(timezone.localdate)


class RoundActionFactory(DjangoModelFactory):
    """A tap of the round as recorded (no state change behind it: for pages and the admin)."""

    class Meta:
        model = RoundAction

    client_id = factory.LazyFunction(uuid.uuid4)
    order = factory.SubFactory(
        "tests.orders.factories.OrderFactory", delivery=True, status="handed_over"
    )
    vendor = factory.LazyAttribute(lambda o: o.order.vendor)
    round_date = factory.LazyFunction(timezone.localdate)
    action = RoundAction.Action.DELIVERED
    outcome = RoundAction.Outcome.DELIVERED
    applied = True
    tapped_at = factory.LazyFunction(timezone.now)


class WellbeingFlagFactory(DjangoModelFactory):
    class Meta:
        model = WellbeingFlag

    subscription = factory.SubFactory(SubscriptionFactory)
    kind = WellbeingFlag.Kind.CONCERN
    note = "did not answer the door"
    raised_by = factory.LazyAttribute(lambda o: o.subscription.vendor.user)
    contact_told = True


class WellbeingRequestFactory(DjangoModelFactory):
    class Meta:
        model = WellbeingRequest

    customer = factory.SubFactory(CustomerProfileFactory)
    token = factory.LazyFunction(uuid.uuid4)
    requester_name = "Kim Minji"
    requester_email = factory.Sequence(lambda n: f"family{n}@example.test")
    relation = WellbeingRequest.Relation.FAMILY
    message = "Mum lives alone since last year."
