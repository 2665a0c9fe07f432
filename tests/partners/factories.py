"""factory_boy factories for the partners app."""

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from partners.events import EVENT_TYPES
from partners.models import Delivery, DeliveryAttempt, Endpoint, Partner, PartnerEvent, PointStaff
from partners.outbound import secret_new
from tests.factories import PickupPointFactory, UserFactory


class PartnerFactory(DjangoModelFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"파트너 {n}")
    owner = factory.SubFactory(UserFactory)

    class Params:
        at_point = factory.Trait(pickup_point=factory.SubFactory(PickupPointFactory))


class EndpointFactory(DjangoModelFactory):
    class Meta:
        model = Endpoint

    partner = factory.SubFactory(PartnerFactory)
    url = "https://partner.example.test/hooks"
    event_types = factory.LazyFunction(lambda: list(EVENT_TYPES))
    secret = factory.LazyFunction(secret_new)


class PartnerEventFactory(DjangoModelFactory):
    class Meta:
        model = PartnerEvent

    aggregate = "order"
    aggregate_id = factory.Sequence(lambda n: 700_000 + n)
    sequence = 1
    event_id = factory.LazyAttribute(lambda o: f"evt_{o.aggregate}_{o.aggregate_id}_{o.sequence}")
    type = "order.placed"
    occurred_at = factory.LazyFunction(timezone.now)
    data = factory.LazyAttribute(lambda o: {"order_id": o.aggregate_id})


class DeliveryFactory(DjangoModelFactory):
    class Meta:
        model = Delivery

    endpoint = factory.SubFactory(EndpointFactory)
    event = factory.SubFactory(PartnerEventFactory)
    aggregate = factory.SelfAttribute("event.aggregate")
    aggregate_id = factory.SelfAttribute("event.aggregate_id")
    sequence = factory.SelfAttribute("event.sequence")


class DeliveryAttemptFactory(DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    delivery = factory.SubFactory(DeliveryFactory)
    started_at = factory.LazyFunction(timezone.now)
    duration_ms = 12
    status_code = 200
    ok = True


class PointStaffFactory(DjangoModelFactory):
    class Meta:
        model = PointStaff

    user = factory.SubFactory(UserFactory)
    pickup_point = factory.SubFactory(PickupPointFactory)
